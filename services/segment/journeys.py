"""Which live journeys use a segment, asked of the journey service before the segment is deleted."""

import grpc

from kit.errors import FailedPrecondition
from kit.logs import get_logger
from kit.runtime import MESSAGE_SIZE_OPTIONS
from nudge.common.v1 import common_pb2
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc

log = get_logger(__name__)

ACTOR = "service:segment"  # how the journey service's access log names these reads


class JourneyUsages:
    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=MESSAGE_SIZE_OPTIONS)
        self.client = journey_pb2_grpc.JourneyServiceStub(self.channel)
        self.timeout = timeout

    async def of_segment(self, workspace_id: str, segment_id: str) -> list[tuple[str, str]]:
        """(id, name) of the live journeys that use the segment. Any failure is a refusal:
        without an answer a segment could be deleted from under a running journey."""
        try:
            reply = await self.client.FindUsages(journey_pb2.FindUsagesRequest(
                context=common_pb2.RequestContext(workspace_id=workspace_id, actor=ACTOR), segment_id=segment_id),
                timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            log.warning("journey usages unknown", segment_id=segment_id, code=err.code().name, details=err.details())
            raise FailedPrecondition(f"cannot confirm that no live journey uses segment {segment_id}: "
                                     "journey service unavailable", field="id") from None
        return [(journey.id, journey.name) for journey in reply.journeys]

    async def close(self) -> None:
        await self.channel.close()
