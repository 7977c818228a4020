"""The question segment and dispatch ask the journey service before deleting a segment or a
template: does a live journey use it? No answer is a refusal, never an unchecked delete."""

import grpc

from kit.errors import Conflict, FailedPrecondition
from kit.logs import get_logger
from kit.runtime import MESSAGE_SIZE_OPTIONS
from nudge.common.v1 import common_pb2
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc

log = get_logger(__name__)


class JourneyUsages:
    def __init__(self, address: str, actor: str, timeout: float = 5.0) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=MESSAGE_SIZE_OPTIONS)
        self.client = journey_pb2_grpc.JourneyServiceStub(self.channel)
        self.actor = actor  # how the journey service's access log names the caller
        self.timeout = timeout

    async def refuse_if_used(self, workspace_id: str, kind: str, item_id: str) -> None:
        """Conflict naming the live journeys that use the segment or template (`kind`);
        FailedPrecondition when the journey service gives no answer."""
        try:
            reply = await self.client.FindUsages(journey_pb2.FindUsagesRequest(
                context=common_pb2.RequestContext(workspace_id=workspace_id, actor=self.actor),
                **{f"{kind}_id": item_id}), timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            log.warning("journey usages unknown; kept", kind=kind, id=item_id, code=err.code().name,
                        details=err.details())
            raise FailedPrecondition(f"cannot confirm that no live journey uses {kind} {item_id!r}: "
                                     "journey service unavailable", field="id") from None
        if reply.journeys:
            names = ", ".join(f"{j.name} ({j.id})" for j in reply.journeys)
            raise Conflict(f"{kind} {item_id!r} is used by live journey(s) {names}; change or archive those first",
                           field="id")

    async def close(self) -> None:
        await self.channel.close()
