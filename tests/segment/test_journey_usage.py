"""Deleting a segment a live journey uses is refused, and so is deleting one while the journey
service cannot say whether a journey uses it.

The journey service here is a stand-in: a real gRPC server that implements only
JourneyService.FindUsages (its contract with the segment service) and answers a configured
list. The end-to-end refusal against the real journey service is tested in tests/journey.
"""

import uuid

import grpc
import pytest

from kit.errors import Conflict, FailedPrecondition
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc
from services.segment.clients import JourneyUsages
from services.segment.service import SegmentService
from tests.support.processes import free_port

RULES = '{"trait": "plan", "op": "eq", "value": "pro"}'


class StandInJourneys(journey_pb2_grpc.JourneyServiceServicer):
    def __init__(self) -> None:
        self.usages: dict[str, list[journey_pb2.Journey]] = {}  # segment id → live journeys using it
        self.requests: list[journey_pb2.FindUsagesRequest] = []

    async def FindUsages(self, request, context):
        self.requests.append(request)
        return journey_pb2.FindUsagesReply(journeys=self.usages.get(request.segment_id, []))


@pytest.fixture(scope="module")
async def journeys():
    """The stand-in journey service, served on a local port; yields (servicer, address)."""
    servicer = StandInJourneys()
    server = grpc.aio.server()
    journey_pb2_grpc.add_JourneyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def service_asking(isolated):
    """Makes segment services on the isolated one's database and clock that ask the journey
    service at a given address."""
    clients = []

    def make(address: str) -> SegmentService:
        clients.append(JourneyUsages(address, "service:segment"))
        return SegmentService(isolated.sessions, isolated.redis, isolated.outbox, isolated.clock, clients[-1])
    yield make
    for client in clients:
        await client.close()


async def test_a_segment_a_live_journey_uses_is_not_deleted(service_asking, journeys):
    servicer, address = journeys
    service = service_asking(address)
    ws = f"ws_used_{uuid.uuid4().hex[:8]}"
    segment = await service.create(ws, "test-key", "pro users", "", RULES)
    servicer.usages[segment["id"]] = [journey_pb2.Journey(id="j-welcome", name="Welcome pros", status="published")]

    with pytest.raises(Conflict) as refused:
        await service.delete(ws, "test-key", segment["id"])
    assert refused.value.field == "id"
    assert "Welcome pros (j-welcome)" in refused.value.message
    assert (await service.get(ws, segment["id"]))["id"] == segment["id"]
    asked = servicer.requests[-1]
    assert (asked.context.workspace_id, asked.context.actor, asked.segment_id) == (
        ws, "service:segment", segment["id"])


async def test_a_segment_no_journey_uses_is_deleted(service_asking, journeys):
    _, address = journeys
    service = service_asking(address)
    ws = f"ws_unused_{uuid.uuid4().hex[:8]}"
    segment = await service.create(ws, "test-key", "pro users", "", RULES)

    await service.delete(ws, "test-key", segment["id"])
    assert await service.list_segments(ws, 50, "") == ([], "")


async def test_a_segment_is_not_deleted_while_the_journey_service_is_unreachable(service_asking):
    service = service_asking(f"127.0.0.1:{free_port()}")  # nothing listens there
    ws = f"ws_unreachable_{uuid.uuid4().hex[:8]}"
    segment = await service.create(ws, "test-key", "pro users", "", RULES)

    with pytest.raises(FailedPrecondition) as refused:
        await service.delete(ws, "test-key", segment["id"])
    assert refused.value.field == "id"
    assert refused.value.message == (f"cannot confirm that no live journey uses segment {segment['id']!r}: "
                                     "journey service unavailable")
    assert (await service.get(ws, segment["id"]))["id"] == segment["id"]
