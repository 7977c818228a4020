"""The dispatch service's call to the journey service: before deleting a template, does a live
journey use it? No answer is a refusal, never an unchecked delete."""

from kit.clients import ServiceClient
from kit.errors import Conflict
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc


class JourneyUsages(ServiceClient):
    def __init__(self, address: str, actor: str, timeout: float = 5.0) -> None:
        super().__init__(address, journey_pb2_grpc.JourneyServiceStub, actor, timeout)

    async def refuse_if_used(self, workspace_id: str, kind: str, item_id: str) -> None:
        """Conflict naming the live journeys that use the template (`kind`); FailedPrecondition
        when the journey service gives no answer."""
        reply = await self.required(self.client.FindUsages(journey_pb2.FindUsagesRequest(
            context=self.context(workspace_id), **{f"{kind}_id": item_id}), timeout=self.timeout),
            "journey", f"that no live journey uses {kind} {item_id!r}", field="id")
        if reply.journeys:
            names = ", ".join(f"{j.name} ({j.id})" for j in reply.journeys)
            raise Conflict(f"{kind} {item_id!r} is used by live journey(s) {names}; change or archive those first",
                           field="id")
