"""The metrics routes of the gateway against the real metrics service: facts are told the
way the other services tell them (entries on the delivery, engagement, journey and event
streams), and each route answers them in the API's JSON (camelCase, every key present);
parameters are checked by name before any call; only the admin key gets in. What the
numbers mean is tested with the metrics service itself."""

import contextlib
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from kit.streams import StreamEvent, stream_name
from tests.support.api import fields_of
from tests.support.waiting import eventually

METRICS_ROUTES = {
    "/v1/metrics/stats": {"get"},
    "/v1/journeys/{journey_id}/experiment": {"get"},
    "/v1/journeys/{journey_id}/funnel": {"get"},
    "/v1/profiles/{profile_id}/value": {"get"},
    "/v1/metrics/customer-value": {"get"},
    "/v1/metrics/data-quality": {"get"},
    "/v1/metrics/settings": {"get", "put"},
}
COUNTS = {"sent", "delivered", "failed", "suppressed", "suppressedByReason", "deferred", "opened", "machineOpened",
          "impressions", "clicked", "clicks", "unsubscribed", "converted", "revenue", "deliveryRate", "openRate",
          "clickRate", "clickToOpenRate", "conversionRate", "unsubscribeRate"}
# 10:00 in Seoul, where the metrics service's days are.
MONDAY = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
TUESDAY = MONDAY + timedelta(days=1)
WAIT_SECONDS = 30


class Streams:
    """Tells the metrics service facts of one workspace, as stream entries."""

    def __init__(self, redis, workspace_id: str, partitions: int) -> None:
        self.redis, self.workspace_id, self.partitions = redis, workspace_id, partitions

    async def tell(self, family: str, type_: str, profile_id: str, at: datetime, **payload) -> None:
        event = StreamEvent(uuid.uuid4(), type_, self.workspace_id, profile_id, at, payload)
        await self.redis.xadd(stream_name(family, profile_id, self.partitions), event.to_fields())

    async def delivery(self, status: str, profile_id: str, at: datetime, delivery_id: str, **payload) -> None:
        await self.tell("nudge.deliveries.v1", f"delivery.{status}", profile_id, at, delivery_id=delivery_id,
                        **payload)

    async def engagement(self, kind: str, profile_id: str, at: datetime, delivery_id: str, **payload) -> None:
        await self.tell("nudge.engagement.v1", f"engagement.{kind}", profile_id, at, delivery_id=delivery_id,
                        **payload)

    async def track(self, profile_id: str, at: datetime, event: str, **properties) -> None:
        # the shape the profile service publishes (segment and journey read these entries too)
        await self.tell("nudge.events.v1", "event.track", profile_id, at, event_id=str(uuid.uuid4()),
                        type="track", event=event, properties=properties, timestamp=at.isoformat(),
                        receivedAt=(at + timedelta(seconds=2)).isoformat())

    async def run_step(self, type_: str, profile_id: str, at: datetime, **payload) -> None:
        await self.tell("nudge.journeys.v1", f"journey.{type_}", profile_id, at, **payload)


@pytest.fixture
def streams(redis, workspace, metrics_platform) -> Streams:
    partitions = sum(1 for s in metrics_platform.consumer.streams if s.startswith("nudge.events.v1"))
    return Streams(redis, workspace.id, partitions)


def profile() -> str:
    return str(uuid.uuid4())


async def answers(get, expected, what: str):
    """Polls `get()` until it returns `expected` (the consumer is asynchronous); the last answer otherwise."""
    found = None

    async def as_expected():
        nonlocal found
        found = await get()
        return found == expected
    with contextlib.suppress(AssertionError):  # the assert below says what was answered instead
        await eventually(as_expected, timeout=WAIT_SECONDS, interval=0.1)
    assert found == expected, f"{what}: the metrics service never answered the expected value"
    return found


async def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


# --- the API surface --------------------------------------------------------------------------


async def test_api_docs_list_every_metrics_route_and_method(workspace):
    paths = (await workspace.admin.get("/openapi.json")).json()["paths"]
    assert {path: set(paths.get(path, {})) for path in METRICS_ROUTES} == METRICS_ROUTES
    params = {p["name"] for p in paths["/v1/metrics/stats"]["get"]["parameters"]}
    assert params == {"journeyId", "version", "nodeId", "variant", "channel", "templateId", "from", "until", "groupBy"}


async def test_metrics_need_the_admin_key(workspace, gateway_url):
    gets = ["/v1/metrics/stats", "/v1/journeys/j-1/experiment", "/v1/journeys/j-1/funnel", "/v1/profiles/p-1/value",
            "/v1/metrics/customer-value", "/v1/metrics/data-quality", "/v1/metrics/settings"]
    settings = {"orderEvent": "Order Completed", "revenueProperty": "revenue", "attributionWindow": "P3D"}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as anonymous:
        for path in gets:
            r = await anonymous.get(path)
            assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized"), path
        r = await anonymous.put("/v1/metrics/settings", json=settings)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    for path in gets:
        r = await workspace.tracking.get(path)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), path
    r = await workspace.tracking.put("/v1/metrics/settings", json=settings)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


async def test_metrics_service_is_in_the_services_health(workspace):
    health = await workspace.admin.get("/healthz/services")
    assert health.json()["services"]["metrics"] == "ok", health.text


async def test_bad_parameters_name_the_field(workspace):
    get = workspace.admin.get
    assert fields_of(await get("/v1/metrics/stats", params={"groupBy": "node,week"})) == {"groupBy"}
    assert fields_of(await get("/v1/metrics/stats", params=[("groupBy", "node"), ("groupBy", "nodes")])) == {"groupBy"}
    assert fields_of(await get("/v1/metrics/stats", params={"version": "two"})) == {"version"}
    assert fields_of(await get("/v1/metrics/stats", params={"version": 0})) == {"version"}
    assert fields_of(await get("/v1/metrics/stats", params={"version": 2**31})) == {"version"}
    assert fields_of(await get("/v1/metrics/stats", params={"from": "last week"})) == {"from"}
    assert fields_of(await get("/v1/metrics/stats", params={"until": "2026-03-02T10:00:00"})) == {"until"}  # no zone
    assert fields_of(await get("/v1/metrics/data-quality", params={"from": "2026-13-01T00:00:00Z"})) == {"from"}
    assert fields_of(await get("/v1/journeys/j-1/funnel", params={"version": "-1"})) == {"version"}
    assert fields_of(await get("/v1/journeys/j-1/experiment", params={"version": "x"})) == {"version"}
    assert fields_of(await get("/v1/journeys/j-1/experiment", params={"confidence": "high"})) == {"confidence"}
    # the range of the confidence level is the metrics service's to check; its 422 names the field too
    r = await get("/v1/journeys/j-1/experiment", params={"confidence": 1.5})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "confidence"}, r.text


# --- stats ------------------------------------------------------------------------------------


async def test_stats_count_deliveries_engagement_and_attributed_orders_by_node_and_variant(workspace, streams):
    alice, bob = profile(), profile()
    dims = {"journey_id": "j-welcome", "journey_version": 2, "node_id": "welcome"}
    await streams.delivery("sent", alice, MONDAY, "d-1", channel="sms", template_id="t-1", variant="a", **dims)
    await streams.delivery("delivered", alice, MONDAY, "d-1", channel="sms", template_id="t-1", variant="a", **dims)
    await streams.delivery("sent", bob, MONDAY, "d-2", channel="email", template_id="t-2", variant="b", **dims)
    await streams.delivery("suppressed", bob, MONDAY, "d-3", channel="email", template_id="t-2", variant="b",
                           rule="fatigue:daily", **dims)
    await streams.engagement("opened", alice, MONDAY + timedelta(minutes=5), "d-1", channel="sms", variant="a",
                             **dims)
    for minutes in (6, 7):
        await streams.engagement("clicked", alice, MONDAY + timedelta(minutes=minutes), "d-1", channel="sms",
                                 variant="a", link_id="l-1", **dims)
    await streams.track(alice, MONDAY + timedelta(hours=1), "Order Completed", revenue=30000)

    async def by_node_and_variant():
        return await ok(await workspace.admin.get("/v1/metrics/stats", params=[("groupBy", "node"),
                                                                             ("groupBy", "variant")]))

    async def summary():
        return _summary(await by_node_and_variant())

    await answers(summary, [
        ({"node": "welcome", "variant": "a"}, {"sent": 1, "delivered": 1, "opened": 1, "clicked": 1, "clicks": 2,
                                               "converted": 1, "revenue": 30000.0}),
        ({"node": "welcome", "variant": "b"}, {"sent": 1, "suppressed": 1}),
    ], "stats by node and variant")
    rows = (await by_node_and_variant())["rows"]
    assert all(set(r) == {"group", "counts"} and set(r["counts"]) == COUNTS for r in rows)
    a, b = (r["counts"] for r in rows)
    assert b["suppressedByReason"] == {"fatigue:daily": 1} and a["suppressedByReason"] == {}
    assert a["openRate"] == 1.0 and a["clickToOpenRate"] == 1.0 and a["conversionRate"] == 1.0

    # comma-separated is the same as repeated; without groupBy, one total row with an empty group
    combined = await ok(await workspace.admin.get("/v1/metrics/stats", params={"groupBy": "node, variant"}))
    assert combined == await by_node_and_variant()
    total = await ok(await workspace.admin.get("/v1/metrics/stats"))
    assert [r["group"] for r in total["rows"]] == [{}]
    assert total["rows"][0]["counts"]["sent"] == 2 and total["rows"][0]["counts"]["converted"] == 1
    # the version is a number in a group; filters narrow the rows
    by_version = await ok(await workspace.admin.get("/v1/metrics/stats", params={
        "groupBy": "journey,version,channel,template", "journeyId": "j-welcome", "version": 2, "variant": "b"}))
    assert [r["group"] for r in by_version["rows"]] == [
        {"journey": "j-welcome", "version": 2, "channel": "email", "template": "t-2"}]
    for params in ({"nodeId": "other"}, {"channel": "push"}, {"templateId": "t-9"}, {"version": 3}):
        assert (await ok(await workspace.admin.get("/v1/metrics/stats", params={"groupBy": "node", **params}))) == {
            "rows": []}, params


async def test_stats_by_day_is_the_time_series_of_a_chart(workspace, streams):
    alice = profile()
    for n, at in enumerate([MONDAY, TUESDAY, TUESDAY + timedelta(hours=2)]):
        await streams.delivery("sent", alice, at, f"d-{n}", channel="sms", journey_id="j-daily", node_id="n")

    async def series(**params):
        return await ok(await workspace.admin.get("/v1/metrics/stats", params={"groupBy": "day", **params}))

    async def sent_per_day(**params):
        return [(r["group"], r["counts"]["sent"]) for r in (await series(**params))["rows"]]

    await answers(sent_per_day, [({"day": "2026-03-02"}, 1), ({"day": "2026-03-03"}, 2)], "sends per day")
    # from is inclusive, until exclusive
    assert await sent_per_day(**{"from": TUESDAY.isoformat()}) == [({"day": "2026-03-03"}, 2)]
    assert await sent_per_day(until=TUESDAY.isoformat()) == [({"day": "2026-03-02"}, 1)]
    assert await sent_per_day(**{"from": "2026-03-03T00:00:00+09:00", "until": "2026-03-04T00:00:00+09:00"}) == [
        ({"day": "2026-03-03"}, 2)]
    by_day_and_channel = await series(groupBy="day,channel")
    assert [r["group"] for r in by_day_and_channel["rows"]] == [{"day": "2026-03-02", "channel": "sms"},
                                                                {"day": "2026-03-03", "channel": "sms"}]


# --- a journey's experiment and funnel --------------------------------------------------------


async def test_experiment_and_funnel_of_a_journey(workspace, streams):
    journey = {"journey_id": "j-split", "version": 1}
    drawn = {"a": 4, "b": 4, "holdout": 2}
    converting = {"a": 1, "b": 3, "holdout": 0}
    for variant, runs in drawn.items():
        for n in range(runs):
            person, run = profile(), f"r-{variant}-{n}"
            at = MONDAY + timedelta(minutes=n)
            await streams.run_step("entered", person, at, run_id=run, node_id="", kind="entered", **journey)
            await streams.run_step("step", person, at, run_id=run, node_id="split", kind="split", outcome=variant,
                                   variant=variant, **journey)
            if variant != "holdout":
                await streams.run_step("step", person, at + timedelta(seconds=1), run_id=run, node_id="send",
                                       kind="send", outcome="sent", variant=variant, **journey)
            if n < converting[variant]:
                await streams.run_step("ended", person, at + timedelta(hours=1), run_id=run, node_id="send",
                                       kind="converted", outcome="Order Completed", variant=variant, **journey)

    async def variants():
        reply = await ok(await workspace.admin.get("/v1/journeys/j-split/experiment"))
        return [(v["variant"], v["runs"], v["conversions"], [c["against"] for c in v["comparisons"]])
                for v in reply["variants"]]

    await answers(variants, [("a", 4, 1, ["holdout"]), ("b", 4, 3, ["a", "holdout"]), ("holdout", 2, 0, ["a"])],
                     "experiment")
    reply = await ok(await workspace.admin.get("/v1/journeys/j-split/experiment",
                                               params={"version": 1, "control": "b", "confidence": 0.9}))
    variants = {v["variant"]: v for v in reply["variants"]}
    assert set(variants["a"]) == {"variant", "runs", "conversions", "rate", "revenue", "comparisons"}
    assert variants["a"]["rate"] == 0.25
    assert [c["against"] for c in variants["a"]["comparisons"]] == ["b", "holdout"]
    comparison = variants["a"]["comparisons"][0]
    assert set(comparison) == {"against", "lift", "relativeLift", "pValue", "z", "ciLow", "ciHigh", "significant"}
    assert comparison["lift"] == pytest.approx(0.25 - 0.75)
    assert comparison["ciLow"] < comparison["lift"] < comparison["ciHigh"]
    assert (await ok(await workspace.admin.get("/v1/journeys/j-split/experiment", params={"version": 2}))) == {
        "variants": []}

    funnel = await ok(await workspace.admin.get("/v1/journeys/j-split/funnel"))
    assert funnel == {"stages": [{"stage": "entered", "runs": 10, "ofEntered": 1.0},
                                 {"stage": "split", "runs": 10, "ofEntered": 1.0},
                                 {"stage": "send", "runs": 8, "ofEntered": 0.8},
                                 {"stage": "converted", "runs": 4, "ofEntered": 0.4}]}
    assert await ok(await workspace.admin.get("/v1/journeys/j-split/funnel", params={"version": 1})) == funnel
    assert await ok(await workspace.admin.get("/v1/journeys/j-other/funnel")) == {"stages": []}


# --- customer value ---------------------------------------------------------------------------


async def test_customer_value_of_a_profile_and_of_the_workspace(workspace, streams):
    alice, bob, nobody = profile(), profile(), profile()
    await streams.track(alice, MONDAY, "Order Completed", revenue=20000)
    await streams.track(alice, TUESDAY, "Order Completed", revenue="40,000")
    await streams.track(bob, TUESDAY, "Order Completed", revenue=5000)
    await streams.track(bob, TUESDAY, "Product Viewed", revenue=999)  # not an order

    async def alices_orders():
        value = await ok(await workspace.admin.get(f"/v1/profiles/{alice}/value"))
        return value["orders"], value["revenue"]

    await answers(alices_orders, (2, 60000.0), "alice's orders")
    value = await ok(await workspace.admin.get(f"/v1/profiles/{alice}/value"))
    assert set(value) == {"profileId", "orders", "revenue", "averageOrderValue", "daysSinceLastOrder",
                          "recencyScore", "frequencyScore", "monetaryScore", "churnRisk", "firstOrderAt",
                          "lastOrderAt"}
    assert value["profileId"] == alice and value["averageOrderValue"] == 30000.0
    assert value["firstOrderAt"] == "2026-03-02T01:00:00Z" and value["lastOrderAt"] == "2026-03-03T01:00:00Z"
    assert isinstance(value["daysSinceLastOrder"], int) and value["daysSinceLastOrder"] >= 0
    assert all(1 <= value[s] <= 5 for s in ("recencyScore", "frequencyScore", "monetaryScore"))
    assert 0 <= value["churnRisk"] <= 1

    none = await ok(await workspace.admin.get(f"/v1/profiles/{nobody}/value"))
    assert none == {"profileId": nobody, "orders": 0, "revenue": 0.0, "averageOrderValue": 0.0,
                    "daysSinceLastOrder": None, "recencyScore": 0, "frequencyScore": 0, "monetaryScore": 0,
                    "churnRisk": 1.0, "firstOrderAt": None, "lastOrderAt": None}

    async def customers():
        return (await ok(await workspace.admin.get("/v1/metrics/customer-value")))["customers"]

    await answers(customers, 2, "customers")
    spread = await ok(await workspace.admin.get("/v1/metrics/customer-value"))
    assert set(spread) == {"customers", "revenue", "averageOrderValue", "repeatRate", "orders", "revenueBuckets",
                           "recency", "churnRisk"}
    assert (spread["revenue"], spread["averageOrderValue"], spread["repeatRate"]) == (65000.0, 65000.0 / 3, 0.5)
    for name in ("orders", "revenueBuckets", "recency", "churnRisk"):
        assert spread[name] and all(set(b) == {"label", "profiles"} for b in spread[name]), name
        assert sum(b["profiles"] for b in spread[name]) == 2, name
    assert [b["profiles"] for b in spread["orders"]][:2] == [1, 1]


# --- data quality -----------------------------------------------------------------------------


async def test_data_quality_per_day(workspace, streams):
    alice = profile()
    await streams.track(alice, MONDAY, "Page Viewed")
    await streams.track(alice, TUESDAY, "Page Viewed")
    await streams.tell("nudge.events.v1", "ingest.dropped", "", TUESDAY, duplicates=3,
                       rejected={"timestamp": 2}, erased=1)
    await streams.delivery("sent", alice, TUESDAY, "d-1", channel="email", unreachable=["sms", "kakao"])

    async def days():
        reply = await ok(await workspace.admin.get("/v1/metrics/data-quality"))
        return [(d["day"], d["events"], d["duplicatesDropped"]) for d in reply["days"]]

    await answers(days, [("2026-03-02", 1, 0), ("2026-03-03", 1, 3)], "data quality days")
    tuesday = await ok(await workspace.admin.get("/v1/metrics/data-quality", params={
        "from": TUESDAY.isoformat(), "until": (TUESDAY + timedelta(days=1)).isoformat()}))
    assert tuesday == {"days": [{
        "day": "2026-03-03", "events": 1, "duplicatesDropped": 3, "erasedDropped": 1,
        "rejectedByReason": {"timestamp": 2},
        "missingContactByChannel": {"sms": 1, "kakao": 1}, "ingestLagP50Seconds": 2.0, "ingestLagP95Seconds": 2.0}]}


# --- settings ---------------------------------------------------------------------------------


async def test_settings_round_trip(workspace):
    assert await ok(await workspace.admin.get("/v1/metrics/settings")) == {
        "orderEvent": "Order Completed", "revenueProperty": "revenue", "attributionWindow": "P3D"}
    wanted = {"orderEvent": "Purchase", "revenueProperty": "amount", "attributionWindow": "PT12H"}
    assert await ok(await workspace.admin.put("/v1/metrics/settings", json=wanted)) == wanted
    assert await ok(await workspace.admin.get("/v1/metrics/settings")) == wanted
    # the window defaults to three days
    assert (await ok(await workspace.admin.put("/v1/metrics/settings", json={
        "orderEvent": "Purchase", "revenueProperty": "amount"})))["attributionWindow"] == "P3D"


async def test_bad_settings_name_the_field(workspace):
    put = workspace.admin.put
    assert fields_of(await put("/v1/metrics/settings", json={"orderEvent": "Purchase"})) == {"revenueProperty"}
    assert fields_of(await put("/v1/metrics/settings", json={"orderEvent": "", "revenueProperty": "amount"})) == {
        "orderEvent"}
    for window in ("3 days", "P365D"):
        r = await put("/v1/metrics/settings", json={"orderEvent": "Purchase", "revenueProperty": "amount",
                                                     "attributionWindow": window})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["details"] == {"field": "attributionWindow"} and error["message"].startswith("attributionWindow")
    r = await put("/v1/metrics/settings", json={"orderEvent": "x" * 201, "revenueProperty": "amount"})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "orderEvent"}, r.text
    assert await ok(await workspace.admin.get("/v1/metrics/settings")) == {
        "orderEvent": "Order Completed", "revenueProperty": "revenue", "attributionWindow": "P3D"}


def _summary(reply: dict) -> list[tuple[dict, dict]]:
    """Each row's group and its non-zero counts (rates and reasons apart)."""
    rows = reply["rows"]
    return [(r["group"], {k: v for k, v in r["counts"].items() if v and not k.endswith(("Rate", "ByReason"))})
            for r in rows]
