"""Calls from the gateway to a service: the request context every call carries (workspace
and the key that made it, for the audit log) and the deadline."""

from fastapi import Request

from gateway.workspaces import Principal
from nudge.common.v1 import common_pb2


def context_of(principal: Principal) -> common_pb2.RequestContext:
    return common_pb2.RequestContext(workspace_id=principal.workspace_id, actor=principal.key_id)


async def call(request: Request, service: str, method: str, message):
    """`service` names the client on app.state: profile, segment or dispatch."""
    client = getattr(request.app.state, service)
    return await getattr(client, method)(message, timeout=request.app.state.settings.rpc_timeout_seconds)


def time_json(message, name: str) -> str | None:
    """An optional Timestamp field as JSON text, or null when unset."""
    return getattr(message, name).ToJsonString() if message.HasField(name) else None
