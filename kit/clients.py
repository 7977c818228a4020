"""A gRPC client of another service, as every service keeps them: one channel, the generated client, how
the callee's access log names the caller, and the rule for a call a write depends on (no
answer is a refusal, never an unchecked write). Service-specific clients build on it in their
own service (`services/*/clients.py`); kit knows no service."""

import grpc

from kit.errors import FailedPrecondition
from kit.logs import get_logger
from kit.grpc_channels import channel
from nudge.common.v1 import common_pb2

log = get_logger(__name__)


class ServiceClient:
    def __init__(self, address: str, client_class, actor: str, timeout: float = 5.0) -> None:
        self.channel = channel(address)
        self.client = client_class(self.channel)
        self.actor = actor  # how the callee's access log names the caller
        self.timeout = timeout

    def context(self, workspace_id: str) -> common_pb2.RequestContext:
        return common_pb2.RequestContext(workspace_id=workspace_id, actor=self.actor)

    async def required(self, call, callee: str, confirm: str, field: str):
        """The reply of `call`; FailedPrecondition ("cannot confirm <confirm>: <callee> service
        unavailable") when there is none, so the caller refuses what depended on it."""
        try:
            return await call
        except grpc.aio.AioRpcError as err:
            log.warning("no answer; refused", callee=callee, confirm=confirm, code=err.code().name,
                        details=err.details())
            raise FailedPrecondition(f"cannot confirm {confirm}: {callee} service unavailable", field=field) from None

    async def close(self) -> None:
        await self.channel.close()
