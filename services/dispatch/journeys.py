"""The journeys that use a template, asked of the journey service before it is deleted."""

from dataclasses import dataclass

import grpc

from kit.runtime import MESSAGE_SIZE_OPTIONS
from nudge.common.v1 import common_pb2
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc

ACTOR = "service:dispatch"


@dataclass(frozen=True)
class JourneyRef:
    id: str
    name: str


class JourneysUnavailable(Exception):
    """The journey service gave no answer, so nobody knows whether a journey uses it."""


class JourneyDirectory:
    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=MESSAGE_SIZE_OPTIONS)
        self.client = journey_pb2_grpc.JourneyServiceStub(self.channel)
        self.timeout = timeout

    async def using_template(self, workspace_id: str, template_id: str) -> list[JourneyRef]:
        """The live (published or paused) journeys that send this template."""
        try:
            reply = await self.client.FindUsages(journey_pb2.FindUsagesRequest(
                context=common_pb2.RequestContext(workspace_id=workspace_id, actor=ACTOR), template_id=template_id),
                timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            raise JourneysUnavailable(f"{err.code().name}: {err.details()}") from err
        return [JourneyRef(j.id, j.name) for j in reply.journeys]

    async def close(self) -> None:
        await self.channel.close()
