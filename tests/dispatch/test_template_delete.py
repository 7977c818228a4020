"""Deleting a template: every version goes, but only once the journey service has said that
no live journey uses it; when it cannot say, the template stays.

The journey service here is a minimal real gRPC server implementing only
JourneyService.FindUsages, answering a list the test sets: that answer is the journey
service's contract, nothing of dispatch is stood in for. The end-to-end refusal against
the real journey service (a published journey sending the template) is tested in
tests/journey."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest

from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc
from services.dispatch.clients import JourneyUsages
from tests.support.api import consent, person, send, setup, wait_for_status
from tests.support.processes import free_port

KST = ZoneInfo("Asia/Seoul")
INAPP = {"inapp": {"title": "Sale", "body": "50% off"}}


class Journeys(journey_pb2_grpc.JourneyServiceServicer):
    """FindUsages answering `using`, and remembering what it was asked."""

    def __init__(self) -> None:
        self.using: list[journey_pb2.Journey] = []
        self.asked: list[tuple[str, str]] = []

    async def FindUsages(self, request, context) -> journey_pb2.FindUsagesReply:
        self.asked.append((request.context.workspace_id, request.template_id))
        return journey_pb2.FindUsagesReply(journeys=self.using)


def ask_journeys_at(platform, monkeypatch, address: str) -> JourneyUsages:
    """Points the running dispatch service's journey client at `address` for one test
    (the session's dispatch service is built before any test's server exists)."""
    directory = JourneyUsages(address, "service:dispatch", timeout=2)
    monkeypatch.setattr(platform.service, "journeys", directory)
    return directory


@pytest.fixture
async def journeys(dispatch_platform, monkeypatch):
    servicer = Journeys()
    server = grpc.aio.server()
    journey_pb2_grpc.add_JourneyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    directory = ask_journeys_at(dispatch_platform, monkeypatch, f"127.0.0.1:{port}")
    yield servicer
    await directory.close()
    await server.stop(0)


@pytest.fixture
async def no_journey_service(dispatch_platform, monkeypatch):
    directory = ask_journeys_at(dispatch_platform, monkeypatch, f"127.0.0.1:{free_port()}")  # nothing listens
    yield
    await directory.close()


async def put_template(ws, template_id: str, body: str = "50% off") -> None:
    response = await ws.admin.put(f"/v1/templates/{template_id}",
                                  json={"channels": {"inapp": {"title": "Sale", "body": body}}})
    assert response.status_code == 200, response.text


async def test_an_unused_template_is_deleted_with_every_version(workspace, journeys):
    await put_template(workspace, "promo", "first")
    await put_template(workspace, "promo", "second")
    await put_template(workspace, "kept")
    response = await workspace.admin.delete("/v1/templates/promo")
    assert response.status_code == 204, response.text
    assert journeys.asked == [(workspace.id, "promo")]

    for version in (0, 1, 2):
        assert (await workspace.admin.get("/v1/templates/promo", params={"version": version})).status_code == 404
    listed = (await workspace.admin.get("/v1/templates")).json()["templates"]
    assert [t["id"] for t in listed] == ["kept"]
    profile = await person(workspace, "after-delete")
    response = await workspace.admin.post("/v1/messages", headers={"Idempotency-Key": "after-delete"}, json={
        "profileId": profile, "channels": ["inapp"], "templateId": "promo"})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "template_id"


async def test_an_unknown_template_is_not_found(workspace, journeys):
    response = await workspace.admin.delete("/v1/templates/missing")
    assert response.status_code == 404 and response.json()["error"]["details"]["field"] == "id"
    assert journeys.asked == []


async def test_a_template_a_live_journey_uses_is_kept_and_the_journeys_are_named(workspace, journeys):
    await put_template(workspace, "welcome")
    journeys.using = [journey_pb2.Journey(id="j-1", name="Welcome series", status="published"),
                      journey_pb2.Journey(id="j-2", name="Winback", status="paused")]
    response = await workspace.admin.delete("/v1/templates/welcome")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["details"]["field"] == "id"
    assert all(name in error["message"] for name in ("j-1", "Welcome series", "j-2", "Winback"))
    assert (await workspace.admin.get("/v1/templates/welcome")).status_code == 200


async def test_when_the_journey_service_cannot_be_reached_the_template_is_kept(workspace, dispatch_platform,
                                                                              no_journey_service):
    await put_template(workspace, "promo")
    async with grpc.aio.insecure_channel(dispatch_platform.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await dispatch_pb2_grpc.DispatchServiceStub(channel).DeleteTemplate(dispatch_pb2.DeleteTemplateRequest(
                context=common_pb2.RequestContext(workspace_id=workspace.id), id="promo"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.details() == ("cannot confirm that no live journey uses template 'promo': "
                                       "journey service unavailable")
    assert (await workspace.admin.delete("/v1/templates/promo")).status_code == 409
    assert (await workspace.admin.get("/v1/templates/promo")).status_code == 200


async def test_a_deferred_send_of_a_deleted_template_fails_with_the_reason(workspace, journeys, dispatch_clock):
    night = datetime.combine(datetime.now(KST).date(), time(22, 30), KST)
    dispatch_clock.set(night)
    await setup(workspace, INAPP, policy={"sender_name": "Nudge Shop"})
    profile = await person(workspace, "sleeper")
    await consent(workspace, profile, inapp=True, advertising=True)
    deferred = await send(workspace, profile, ["inapp"], advertising=True)
    assert deferred["status"] == "deferred"

    assert (await workspace.admin.delete("/v1/templates/hello")).status_code == 204
    dispatch_clock.set(datetime.combine(night.date() + timedelta(days=1), time(8, 0, 1), KST))
    failed = await wait_for_status(workspace, deferred["id"], "failed")
    assert failed["rule"] == "no_template" and failed["reason"] == "template 'hello' was deleted"
