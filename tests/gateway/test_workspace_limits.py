"""The caps on what one workspace can store and ask for (README, "Limits"): each is a 422
naming the field and the limit, and nothing is stored."""

import grpc
import pytest

from kit.errors import field_of
from nudge.common.v1 import common_pb2
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc
from tests.support.journeys import T0

CONDITION = {"trait": "plan", "op": "eq", "value": "pro"}


def _refused(response, field: str, limit: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    named = error["details"].get("field") or error["details"]["fields"][0]["field"]
    assert named == field and limit in error["message"], error


@pytest.mark.parametrize("rules, field, limit", [
    ({"any": [CONDITION] * 200}, "rules.any[199]", "200 conditions"),
    ({"trait": "plan", "op": "in", "value": list(range(501))}, "rules.value", "500 values"),
    ({"event": "E", "where": [{"property": "p", "op": "exists"}] * 21, "count": {"op": "gte", "value": 1}},
     "rules.where", "20 property filters"),
    ({"last_seen": {"op": "more_than", "ago": "P3661D"}}, "rules.last_seen.ago", "3660 days"),
    ({"trait": "signup", "op": "before", "value": "2100-01-01"}, "rules.value", "between 1970 and 2099"),
    ({"trait": "t" * 201, "op": "exists"}, "rules.trait", "200 characters"),
])
async def test_a_segment_rule_beyond_its_caps_is_refused(workspace, rules, field, limit):
    _refused(await workspace.admin.post("/v1/segments", json={"name": "big", "rules": rules}), field, limit)
    assert (await workspace.admin.get("/v1/segments")).json()["segments"] == []


async def test_the_sending_policy_has_stated_caps(workspace):
    rule = {"kind": "channel", "limit": 2, "window": "day"}
    _refused(await workspace.admin.put("/v1/dispatch-policy", json={"fatigue": {"rules": [rule] * 51}}),
             "policy.fatigue.rules", "at most 50 rules")
    _refused(await workspace.admin.put("/v1/dispatch-policy", json={"sender_name": "넛" * 101}),
             "policy.sender_name", "at most 100 characters")
    _refused(await workspace.admin.patch("/v1/dispatch-policy", json={"fatigue": {"rules": [
        {**rule, "window": "P99999999999W"}]}}), "policy.fatigue.rules[0].window", "366 days")
    assert (await workspace.admin.get("/v1/dispatch-policy")).json() == {}


async def test_templates_have_stated_sizes(workspace):
    _refused(await workspace.admin.put("/v1/templates/t", json={"name": "n" * 201, "channels": {"sms": {"text": "x"}}}),
             "name", "200 characters")
    _refused(await workspace.admin.put("/v1/templates/t", json={"channels": {"sms": {"text": "x" * 100_001}}}),
             "channels.sms.text", "100000 characters")
    assert (await workspace.admin.get("/v1/templates")).json()["templates"] == []


async def test_a_simulation_has_a_bounded_timeline_and_span(workspace):
    definition = {"trigger": {"kind": "event", "event": "E"}, "start": "x", "nodes": {"x": {"kind": "exit"}}}
    body = {"definition": definition, "profile": {}, "startAt": T0.isoformat()}
    timeline = [{"event": "E", "at": T0.isoformat()}] * 1001
    _refused(await workspace.admin.post("/v1/journeys/simulate", json={**body, "timeline": timeline}),
             "timeline", "1000")
    _refused(await workspace.admin.post("/v1/journeys/simulate", json={**body, "timeline": [],
                                                                       "until": "2099-12-31T00:00:00Z"}),
             "until", "3660 days")
    _refused(await workspace.admin.post("/v1/journeys/simulate", json={**body, "timeline": [],
                                                                       "startAt": "2100-01-01T00:00:00Z"}),
             "startAt", "between 1970 and 2099")


async def test_the_journey_service_holds_a_timeline_to_its_cap_at_its_own_edge(journey_platform):
    channel = grpc.aio.insecure_channel(journey_platform.address)
    stub = journey_pb2_grpc.JourneyServiceStub(channel)
    event = journey_pb2.TimelineEvent(event="E", at={"seconds": 1_800_000_000})
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Simulate(journey_pb2.SimulateRequest(
                context=common_pb2.RequestContext(workspace_id="ws-edge"), definition_json="{}",
                start_at={"seconds": 1_800_000_000}, timeline=[event] * 1001))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_of(raised.value) == "timeline"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Simulate(journey_pb2.SimulateRequest(
                context=common_pb2.RequestContext(workspace_id="ws-edge"), definition_json="{}",
                start_at={"seconds": 5_000_000_000}))
        assert field_of(raised.value) == "start_at"
    finally:
        await channel.close()


async def test_a_journey_definition_is_capped_in_nodes_and_broadcast_rate(workspace):
    nodes = {f"n{i}": {"kind": "wait", "duration": "P1D", "next": f"n{i + 1}"} for i in range(200)}
    nodes["n200"] = {"kind": "exit"}
    definition = {"trigger": {"kind": "event", "event": "E"}, "start": "n0", "nodes": nodes}
    _refused(await workspace.admin.post("/v1/journeys", json={"name": "j", "definition": definition}),
             "nodes", "200 nodes")
    broadcast = {"trigger": {"kind": "broadcast", "segment": "s", "cron": "0 9 * * *", "rate_per_second": 1e-300},
                 "start": "x", "nodes": {"x": {"kind": "exit"}}}
    _refused(await workspace.admin.post("/v1/journeys", json={"name": "j", "definition": broadcast}),
             "trigger.rate_per_second", "0.01")


async def test_receipts_come_at_most_500_to_a_call(workspace):
    url = (await workspace.admin.get("/v1/channels/webhook/receipt-url")).json()["url"]
    receipts = [{"provider_message_id": f"m{i}", "status": "delivered"} for i in range(501)]
    _refused(await workspace.tracking.post(url, json={"receipts": receipts}), "receipts", "at most 500")


async def test_dates_are_within_1970_to_2099(workspace):
    consent = {"channels": {"email": {"granted": True, "source": "form", "at": "2100-01-01T00:00:00Z"}}}
    _refused(await workspace.admin.put("/v1/profiles/00000000-0000-0000-0000-000000000000/consent", json=consent),
             "channels.email.at", "between 1970 and 2099")
    _refused(await workspace.admin.get("/v1/metrics/data-quality", params={"from": "1969-12-31T00:00:00Z"}),
             "from", "between 1970 and 2099")
