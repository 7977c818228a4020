"""Calls from the gateway to a service: the request context every call carries (workspace
and the key that made it, for the audit log) and the deadline."""

from fastapi import Request

from gateway.workspaces import Principal
from nudge.common.v1 import common_pb2


def context_of(principal: Principal) -> common_pb2.RequestContext:
    return common_pb2.RequestContext(workspace_id=principal.workspace_id, actor=principal.key_id)


async def call(request: Request, service: str, method: str, message):
    """`service` is the stub's name on app.state (profile, segment)."""
    stub = getattr(request.app.state, service)
    return await getattr(stub, method)(message, timeout=request.app.state.settings.rpc_timeout_seconds)
