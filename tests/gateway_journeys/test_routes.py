"""The journey routes of the gateway against a small in-memory JourneyService served over
real gRPC in this process: what each route sends (fields, JSON text, timestamps, the
workspace), the JSON it answers, how service errors become HTTP statuses, and which bodies
are refused before any call. The real service behind these routes is tested in tests/journey."""

from datetime import datetime, timezone

import httpx
import orjson
import pytest

from gateway.app import create_app
from kit.errors import FailedPrecondition, InvalidArgument, NotFound
from kit.runtime import GrpcServer
from kit.transport import timestamp
from nudge.journey.v1 import journey_pb2 as pb
from nudge.journey.v1 import journey_pb2_grpc
from tests.conftest import _serving
from tests.support.api import fields_of

CREATED = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
CREATED_JSON = "2025-03-01T09:00:00Z"
DEFINITION = {"trigger": {"kind": "event", "event": "Signed Up"}, "start": "welcome",
              "nodes": {"welcome": {"kind": "send", "channels": ["alimtalk", "sms"], "template": "tpl-welcome"}}}
STARTER = pb.JourneyStarter(
    id="cart", name="Cart", description="D+1", source="004",
    templates=[pb.StarterTemplateSlot(slot="cart-d1", description="reminder", channels=["push", "sms"],
                                      advertising=True)],
    segments=[pb.StarterSegmentSlot(slot="carts", description="with a cart",
                                    rules_json='{"trait": "cart", "op": "exists"}')],
    definition_json=orjson.dumps(DEFINITION).decode())
STATUS_AFTER = {"PublishJourney": "published", "PauseJourney": "paused", "ResumeJourney": "published",
                "ArchiveJourney": "archived"}
JOURNEY_ROUTES = {
    "/v1/journeys": {"get", "post"},
    "/v1/journeys/simulate": {"post"},
    "/v1/journeys/{journey_id}": {"get", "patch", "delete"},
    "/v1/journeys/{journey_id}/publish": {"post"},
    "/v1/journeys/{journey_id}/pause": {"post"},
    "/v1/journeys/{journey_id}/resume": {"post"},
    "/v1/journeys/{journey_id}/archive": {"post"},
    "/v1/journeys/{journey_id}/versions": {"get"},
    "/v1/journeys/{journey_id}/stats": {"get"},
    "/v1/journeys/{journey_id}/simulate": {"post"},
    "/v1/profiles/{profile_id}/journey-runs": {"get"},
    "/v1/journey-runs/{run_id}": {"get"},
    "/v1/journey-templates": {"get"},
    "/v1/journey-templates/{template_id}": {"get"},
}


class InMemoryJourneys(journey_pb2_grpc.JourneyServiceServicer):
    """Just enough of the journey service to check the gateway's mapping; it keeps the last
    request of each method in `received`."""

    def __init__(self) -> None:
        self.journeys: dict[tuple[str, str], pb.Journey] = {}
        self.versions: dict[tuple[str, str], list[pb.Version]] = {}
        self.received: dict[str, object] = {}

    def _record(self, method: str, request) -> tuple[str, str]:
        self.received[method] = request
        return request.context.workspace_id, request.id

    def _journey(self, key: tuple[str, str]) -> pb.Journey:
        if key not in self.journeys:
            raise NotFound(f"journey {key[1]} not found")
        return self.journeys[key]

    async def CreateJourney(self, request, context):
        key = self._record("CreateJourney", request)
        if "start" not in orjson.loads(request.definition_json):
            raise InvalidArgument("definition.start: required", field="definition.start")
        key = (key[0], key[1] or f"j-{len(self.journeys) + 1}")
        self.journeys[key] = pb.Journey(id=key[1], name=request.name, description=request.description,
                                        status="draft", definition_json=request.definition_json,
                                        created_at=timestamp(CREATED), updated_at=timestamp(CREATED))
        return self.journeys[key]

    async def GetJourney(self, request, context):
        return self._journey(self._record("GetJourney", request))

    async def CreateFromStarter(self, request, context):
        key = self._record("CreateFromStarter", request)
        if request.starter != "cart":
            raise InvalidArgument(f"starter: unknown starter {request.starter!r}", field="starter")
        key = (key[0], key[1] or f"j-{len(self.journeys) + 1}")
        self.journeys[key] = pb.Journey(id=key[1], name=request.name or "Cart", status="draft",
                                        definition_json=STARTER.definition_json,
                                        created_at=timestamp(CREATED), updated_at=timestamp(CREATED))
        return self.journeys[key]

    async def ListStarters(self, request, context):
        self.received["ListStarters"] = request
        return pb.ListStartersReply(starters=[STARTER])

    async def GetStarter(self, request, context):
        self._record("GetStarter", request)
        if request.id != "cart":
            raise NotFound(f"id: unknown starter {request.id!r}", field="id")
        return STARTER

    async def ListJourneys(self, request, context):
        self.received["ListJourneys"] = request
        return pb.ListJourneysReply(journeys=[
            j for (workspace, _), j in self.journeys.items()
            if workspace == request.context.workspace_id and request.status in ("", j.status)])

    async def UpdateJourney(self, request, context):
        journey = self._journey(self._record("UpdateJourney", request))
        journey.name = request.name or journey.name
        journey.description = request.description
        journey.definition_json = request.definition_json or journey.definition_json
        return journey

    async def DeleteJourney(self, request, context):
        key = self._record("DeleteJourney", request)
        if self._journey(key).status not in ("draft", "archived"):
            raise FailedPrecondition("only a draft or an archived journey can be deleted")
        del self.journeys[key]
        return pb.DeleteJourneyReply()

    async def _move(self, method: str, request) -> pb.Journey:
        key = self._record(method, request)
        journey = self._journey(key)
        if method == "PublishJourney":
            journey.version += 1
            self.versions.setdefault(key, []).append(pb.Version(
                version=journey.version, definition_json=journey.definition_json, published_at=timestamp(CREATED)))
        journey.status = STATUS_AFTER[method]
        return journey

    async def PublishJourney(self, request, context):
        return await self._move("PublishJourney", request)

    async def PauseJourney(self, request, context):
        return await self._move("PauseJourney", request)

    async def ResumeJourney(self, request, context):
        return await self._move("ResumeJourney", request)

    async def ArchiveJourney(self, request, context):
        return await self._move("ArchiveJourney", request)

    async def ListVersions(self, request, context):
        key = self._record("ListVersions", request)
        self._journey(key)
        return pb.ListVersionsReply(versions=self.versions.get(key, []))

    async def GetStats(self, request, context):
        self._journey(self._record("GetStats", request))
        return pb.JourneyStats(journey_id=request.id, entered=10, active=4, converted=3, exited=2, completed=1,
                               nodes=[pb.NodeStats(node_id="welcome", reached=10, waiting=0,
                                                   outcomes={"sent": 8, "suppressed": 2})])

    async def Simulate(self, request, context):
        self.received["Simulate"] = request
        return pb.SimulateReply(
            steps=[pb.SimulatedStep(at=request.start_at, kind="entered"),
                   pb.SimulatedStep(at=request.start_at, node_id="welcome", kind="send", outcome="deferred",
                                    channel="alimtalk", template_id="tpl-welcome", reason="night rule",
                                    detail_json='{"until": "2025-03-02T08:00:00+09:00"}')],
            end_status="completed", ended_at=request.start_at)

    async def ListRuns(self, request, context):
        self.received["ListRuns"] = request
        return pb.ListRunsReply(runs=[pb.Run(id="r-1", journey_id="j-1", version=2, profile_id=request.profile_id,
                                             status="active", node_id="to_d2", entered_at=timestamp(CREATED),
                                             next_at=timestamp(CREATED))])

    async def GetRun(self, request, context):
        self._record("GetRun", request)
        if request.id != "r-1":
            raise NotFound(f"run {request.id} not found")
        return pb.Run(id="r-1", journey_id="j-1", version=2, profile_id="p-1", status="converted",
                      node_id="welcome", end_reason="goal", entered_at=timestamp(CREATED),
                      ended_at=timestamp(CREATED),
                      steps=[pb.Step(seq=1, kind="entered", at=timestamp(CREATED)),
                             pb.Step(seq=2, node_id="welcome", kind="send", outcome="sent",
                                     detail_json='{"channel": "alimtalk"}', at=timestamp(CREATED))])


@pytest.fixture(scope="module")
async def journey_service():
    service = InMemoryJourneys()

    def add_servicers(server):
        journey_pb2_grpc.add_JourneyServiceServicer_to_server(service, server)
        return [pb.DESCRIPTOR.services_by_name["JourneyService"].full_name]

    async with _serving(GrpcServer(add_servicers), []) as address:
        service.address = address
        yield service


@pytest.fixture(scope="module")
async def gateway_app(gateway_settings, journey_service):
    """A gateway of its own whose journey client calls the in-memory service."""
    app = create_app(gateway_settings.model_copy(update={"journey_addr": journey_service.address}),
                     setup_observability=False)
    async with app.router.lifespan_context(app):
        yield app


def client(app, **options) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", **options)


@pytest.fixture
async def admin(gateway_app, workspace):
    async with client(gateway_app, headers={"Authorization": f"Bearer {workspace.admin_key}"}) as http:
        yield http


async def create(admin, **fields) -> dict:
    r = await admin.post("/v1/journeys", json={"name": "Welcome", "definition": DEFINITION} | fields)
    assert r.status_code == 201, r.text
    return r.json()


async def test_api_docs_list_every_journey_route_and_method(admin):
    paths = (await admin.get("/openapi.json")).json()["paths"]
    assert {path: set(paths.get(path, {})) for path in JOURNEY_ROUTES} == JOURNEY_ROUTES


async def test_every_journey_route_needs_the_admin_key(gateway_app, workspace, journey_service):
    journey_service.received.clear()
    async with client(gateway_app, auth=(workspace.write_key, "")) as writer, client(gateway_app) as anonymous:
        for path, methods in JOURNEY_ROUTES.items():
            url = path.format(journey_id="j-1", profile_id="p-1", run_id="r-1", template_id="cart")
            for method in methods:
                assert (await writer.request(method, url)).status_code == 403, (method, url)
                assert (await anonymous.request(method, url)).status_code == 401, (method, url)
    assert journey_service.received == {}


async def test_create_sends_the_definition_as_json_text_and_answers_the_journey(admin, journey_service, workspace):
    journey = await create(admin, id="welcome", description="new sign-ups")
    sent = journey_service.received["CreateJourney"]
    assert (sent.context.workspace_id, sent.id, sent.name, sent.description) == (
        workspace.id, "welcome", "Welcome", "new sign-ups")
    assert sent.context.actor and orjson.loads(sent.definition_json) == DEFINITION
    assert journey == {"id": "welcome", "name": "Welcome", "description": "new sign-ups", "status": "draft",
                       "version": 0, "definition": DEFINITION, "createdAt": CREATED_JSON, "updatedAt": CREATED_JSON}
    assert (await admin.get("/v1/journeys/welcome")).json() == journey
    # Without an id the service names it.
    assert (await create(admin))["id"].startswith("j-")


async def test_starters_are_listed_and_a_journey_is_created_from_one_with_its_mappings(admin, journey_service,
                                                                                       workspace):
    starter_json = {"id": "cart", "name": "Cart", "description": "D+1", "source": "004",
                    "templates": [{"slot": "cart-d1", "description": "reminder", "channels": ["push", "sms"],
                                   "advertising": True}],
                    "segments": [{"slot": "carts", "description": "with a cart",
                                  "rules": {"trait": "cart", "op": "exists"}}],
                    "definition": DEFINITION}
    assert (await admin.get("/v1/journey-templates")).json() == {"journeyTemplates": [starter_json]}
    assert journey_service.received["ListStarters"].context.workspace_id == workspace.id
    assert (await admin.get("/v1/journey-templates/cart")).json() == starter_json
    r = await admin.get("/v1/journey-templates/nope")
    assert r.status_code == 404 and r.json()["error"]["details"] == {"field": "id"}

    r = await admin.post("/v1/journeys", json={"id": "my-cart", "starter": "cart", "templates": {"cart-d1": "t-1"},
                                               "segments": {"carts": "seg-1"}})
    assert r.status_code == 201, r.text
    sent = journey_service.received["CreateFromStarter"]
    assert (sent.context.workspace_id, sent.id, sent.name, sent.description, sent.starter) == (
        workspace.id, "my-cart", "", "", "cart")
    assert (dict(sent.templates), dict(sent.segments)) == ({"cart-d1": "t-1"}, {"carts": "seg-1"})
    assert (r.json()["id"], r.json()["name"], r.json()["status"], r.json()["definition"]) == (
        "my-cart", "Cart", "draft", DEFINITION)
    r = await admin.post("/v1/journeys", json={"starter": "welcome"})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "starter"}
    journey_service.received.clear()
    for body, field in [({"starter": "cart", "definition": DEFINITION}, "starter"),
                        ({"name": "x", "definition": DEFINITION, "segments": {"carts": "s"}}, "segments"),
                        ({"definition": DEFINITION}, "name"),
                        ({"starter": "cart", "templates": {"cart-d1": 1}}, "templates.cart-d1")]:
        assert fields_of(await admin.post("/v1/journeys", json=body)) == {field}, body
    assert journey_service.received == {}


async def test_list_filters_by_status(admin, journey_service):
    draft, published = await create(admin, name="Draft"), await create(admin, name="Live")
    await admin.post(f"/v1/journeys/{published['id']}/publish")
    everything = (await admin.get("/v1/journeys")).json()["journeys"]
    assert [j["id"] for j in everything] == [draft["id"], published["id"]]
    assert journey_service.received["ListJourneys"].status == ""
    live = (await admin.get("/v1/journeys", params={"status": "published"})).json()["journeys"]
    assert [(j["id"], j["status"], j["version"]) for j in live] == [(published["id"], "published", 1)]
    assert journey_service.received["ListJourneys"].status == "published"


async def test_patch_sends_only_the_fields_given(admin, journey_service):
    journey = await create(admin, description="before")
    r = await admin.patch(f"/v1/journeys/{journey['id']}", json={"name": "Renamed"})
    sent = journey_service.received["UpdateJourney"]
    assert (sent.id, sent.name, sent.description, sent.definition_json) == (journey["id"], "Renamed", "", "")
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    changed = DEFINITION | {"start": "later"}
    r = await admin.patch(f"/v1/journeys/{journey['id']}", json={"definition": changed, "description": ""})
    sent = journey_service.received["UpdateJourney"]
    assert (sent.name, sent.description, orjson.loads(sent.definition_json)) == ("", "", changed)
    assert r.json()["definition"] == changed


async def test_a_patch_that_changes_nothing_is_refused(admin):
    r = await admin.patch("/v1/journeys/j-1", json={})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "body"}


async def test_lifecycle_routes_answer_the_journey_and_versions_list_what_was_published(admin, journey_service):
    journey_id = (await create(admin))["id"]
    for action, status, version in [("publish", "published", 1), ("pause", "paused", 1),
                                    ("resume", "published", 1), ("publish", "published", 2)]:
        r = await admin.post(f"/v1/journeys/{journey_id}/{action}")
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["status"], r.json()["version"]) == (journey_id, status, version)
    assert journey_service.received["ResumeJourney"].id == journey_id
    versions = (await admin.get(f"/v1/journeys/{journey_id}/versions")).json()
    assert versions == {"versions": [{"version": v, "definition": DEFINITION, "publishedAt": CREATED_JSON}
                                     for v in (1, 2)]}

    refused = await admin.delete(f"/v1/journeys/{journey_id}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert (await admin.post(f"/v1/journeys/{journey_id}/archive")).json()["status"] == "archived"
    deleted = await admin.delete(f"/v1/journeys/{journey_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert journey_service.received["DeleteJourney"].id == journey_id


async def test_an_unknown_journey_or_run_is_404(admin):
    for method, url in [("GET", "/v1/journeys/nope"), ("PATCH", "/v1/journeys/nope"),
                        ("DELETE", "/v1/journeys/nope"), ("POST", "/v1/journeys/nope/publish"),
                        ("GET", "/v1/journeys/nope/versions"), ("GET", "/v1/journeys/nope/stats"),
                        ("GET", "/v1/journey-runs/nope")]:
        body = {"name": "x"} if method == "PATCH" else None
        r = await admin.request(method, url, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found"), (method, url)


async def test_a_definition_the_service_refuses_is_422_naming_its_field(admin):
    r = await admin.post("/v1/journeys", json={"name": "Broken", "definition": {"nodes": {}}})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_argument"
    assert r.json()["error"]["details"] == {"field": "definition.start"}


async def test_bad_bodies_and_parameters_name_the_field_before_any_call(admin, journey_service):
    journey_service.received.clear()
    assert fields_of(await admin.post("/v1/journeys", json={"name": "no definition"})) == {"definition"}
    assert fields_of(await admin.post("/v1/journeys", json={"name": "x", "definition": [1]})) == {"definition"}
    assert fields_of(await admin.patch("/v1/journeys/j-1", json={"name": ""})) == {"name"}
    assert fields_of(await admin.get("/v1/journeys", params={"status": "running"})) == {"status"}
    simulation = {"profile": {}, "startAt": "2025-03-01T18:00:00+09:00", "timeline": []}
    assert fields_of(await admin.post("/v1/journeys/j-1/simulate", json=simulation | {
        "timeline": [{"event": "Signed Up"}]})) == {"timeline.0.at"}
    assert fields_of(await admin.post("/v1/journeys/j-1/simulate", json=simulation | {
        "startAt": "2025-03-01T18:00:00"})) == {"startAt"}  # no offset
    assert fields_of(await admin.post("/v1/journeys/simulate", json=simulation)) == {"definition"}
    assert journey_service.received == {}


async def test_stats_list_their_nodes(admin):
    journey_id = (await create(admin))["id"]
    assert (await admin.get(f"/v1/journeys/{journey_id}/stats")).json() == {
        "journeyId": journey_id, "entered": 10, "active": 4, "converted": 3, "exited": 2, "completed": 1,
        "nodes": [{"nodeId": "welcome", "reached": 10, "waiting": 0, "outcomes": {"sent": 8, "suppressed": 2}}]}


SIMULATION = {"profile": {"traits": {"plan": "free"}, "consents": {"sms": True}},
              "startAt": "2025-03-01T18:00:00+09:00",
              "timeline": [{"event": "Signed Up", "at": "2025-03-01T21:30:00+09:00", "properties": {"source": "ad"}},
                           {"event": "Order Completed", "at": "2025-03-03T00:00:00Z"}]}
SIMULATED = {"steps": [{"at": "2025-03-01T09:00:00Z", "nodeId": None, "kind": "entered", "outcome": None,
                        "channel": None, "templateId": None, "reason": None, "detail": None},
                       {"at": "2025-03-01T09:00:00Z", "nodeId": "welcome", "kind": "send", "outcome": "deferred",
                        "channel": "alimtalk", "templateId": "tpl-welcome", "reason": "night rule",
                        "detail": {"until": "2025-03-02T08:00:00+09:00"}}],
             "endStatus": "completed", "endReason": None, "endedAt": "2025-03-01T09:00:00Z"}


async def test_simulating_a_saved_journey_sends_its_id_and_the_timeline_in_utc(admin, journey_service):
    r = await admin.post("/v1/journeys/welcome/simulate", json=SIMULATION)
    assert r.status_code == 200, r.text
    assert r.json() == SIMULATED
    sent = journey_service.received["Simulate"]
    assert (sent.id, sent.definition_json) == ("welcome", "")
    assert orjson.loads(sent.profile_json) == SIMULATION["profile"]
    assert sent.start_at.ToJsonString() == "2025-03-01T09:00:00Z" and not sent.HasField("until")
    assert [(e.event, e.at.ToJsonString(), orjson.loads(e.properties_json)) for e in sent.timeline] == [
        ("Signed Up", "2025-03-01T12:30:00Z", {"source": "ad"}), ("Order Completed", "2025-03-03T00:00:00Z", {})]


async def test_simulating_an_unsaved_definition_is_not_taken_for_a_journey_id(admin, journey_service):
    r = await admin.post("/v1/journeys/simulate",
                         json=SIMULATION | {"definition": DEFINITION, "until": "2025-04-01T00:00:00+09:00"})
    assert r.status_code == 200, r.text
    assert r.json() == SIMULATED
    sent = journey_service.received["Simulate"]
    assert sent.id == "" and orjson.loads(sent.definition_json) == DEFINITION
    assert sent.until.ToJsonString() == "2025-03-31T15:00:00Z"


async def test_a_profiles_runs_and_one_run_with_its_steps(admin, journey_service, workspace):
    r = await admin.get("/v1/profiles/p-1/journey-runs", params={"journeyId": "j-1"})
    sent = journey_service.received["ListRuns"]
    assert (sent.context.workspace_id, sent.profile_id, sent.journey_id) == (workspace.id, "p-1", "j-1")
    assert r.json() == {"runs": [{"id": "r-1", "journeyId": "j-1", "version": 2, "profileId": "p-1",
                                  "status": "active", "nodeId": "to_d2", "variant": None, "endReason": None,
                                  "enteredAt": CREATED_JSON, "endedAt": None, "nextAt": CREATED_JSON}]}
    await admin.get("/v1/profiles/p-1/journey-runs")
    assert journey_service.received["ListRuns"].journey_id == ""

    run = (await admin.get("/v1/journey-runs/r-1")).json()
    assert run == {"id": "r-1", "journeyId": "j-1", "version": 2, "profileId": "p-1", "status": "converted",
                   "nodeId": "welcome", "variant": None, "endReason": "goal", "enteredAt": CREATED_JSON,
                   "endedAt": CREATED_JSON, "nextAt": None,
                   "steps": [{"seq": 1, "nodeId": None, "kind": "entered", "outcome": None, "detail": None,
                              "at": CREATED_JSON},
                             {"seq": 2, "nodeId": "welcome", "kind": "send", "outcome": "sent",
                              "detail": {"channel": "alimtalk"}, "at": CREATED_JSON}]}
