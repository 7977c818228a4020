"""The metrics service on real streams, PostgreSQL and gRPC: facts idempotent by fact id,
orders attributed to the last message whatever order the streams deliver them in, the
A/B test against a hand-computed example, the funnel, customer value and data quality."""

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from kit.payloads import DELIVERIES, ENGAGEMENT, EVENTS, JOURNEYS
from kit.streams import StreamEvent
from kit.transport import timestamp
from nudge.common.v1 import common_pb2
from nudge.metrics.v1 import metrics_pb2 as pb
from nudge.metrics.v1 import metrics_pb2_grpc
from services.metrics import stats
from tests.support.waiting import eventually

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
async def metrics(metrics_platform):
    async with grpc.aio.insecure_channel(metrics_platform.address) as channel:
        yield metrics_pb2_grpc.MetricsServiceStub(channel)


@pytest.fixture
def ws() -> str:
    return f"ws_metrics_{uuid.uuid4().hex[:8]}"


def fact(event_type: str, ws: str, profile: str, at: datetime, **payload) -> tuple[str, StreamEvent]:
    family = event_type.split(".")[0]
    stream = {"delivery": DELIVERIES, "engagement": ENGAGEMENT, "journey": JOURNEYS}.get(family, EVENTS)
    return stream, StreamEvent(uuid.uuid4(), event_type, ws, profile, at, payload)


async def publish(redis, *facts: tuple[str, StreamEvent]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for stream, event in facts:
            pipe.xadd(stream, event.to_fields())
        await pipe.execute()


def sent(ws, profile, at, delivery, node="d1", variant="a", channel="email", status="sent"):
    return fact(f"delivery.{status}", ws, profile, at, delivery_id=delivery, channel=channel, template_id=f"tpl-{node}",
                journey_id="cart", journey_version=1, node_id=node, variant=variant,
                rule="fatigue:rules[0]" if status == "suppressed" else "")


def engaged(ws, profile, at, delivery, kind="clicked", node="d1", variant="a", machine=False):
    return fact(f"engagement.{kind}", ws, profile, at, fact_id=str(uuid.uuid4()), delivery_id=delivery,
                channel="email", template_id=f"tpl-{node}", journey_id="cart", journey_version=1, node_id=node,
                variant=variant, link_id=0, url="https://shop.kr/p?utm_source=nudge", machine=machine,
                utm={"source": "nudge"})


def order(ws, profile, at, revenue):
    return fact("event.track", ws, profile, at, event_id=str(uuid.uuid4()), type="track", event="Order Completed",
                properties={"revenue": revenue}, timestamp=at.isoformat(),
                receivedAt=(at + timedelta(seconds=2)).isoformat())


async def stats_of(metrics, ws, *group_by, **filters) -> list:
    reply = await metrics.GetStats(pb.StatsRequest(context=common_pb2.RequestContext(workspace_id=ws),
                                                   filter=pb.Filter(**filters), group_by=list(group_by)))
    return [(dict(r.group), r.counts) for r in reply.rows]


async def test_counts_rates_and_attribution_by_node_and_variant(metrics, redis, ws):
    t = NOW - timedelta(days=1)
    await publish(redis,
                  sent(ws, "p1", t, "d-1"), sent(ws, "p2", t, "d-2"), sent(ws, "p3", t, "d-3", variant="b"),
                  sent(ws, "p4", t, "d-4", status="suppressed"),
                  engaged(ws, "p1", t + timedelta(minutes=5), "d-1", "opened"),
                  engaged(ws, "p1", t + timedelta(minutes=6), "d-1", "clicked"),
                  engaged(ws, "p1", t + timedelta(minutes=7), "d-1", "clicked"),  # a second click: one clicker
                  engaged(ws, "p2", t + timedelta(minutes=1), "d-2", "opened", machine=True),
                  engaged(ws, "p2", t + timedelta(minutes=2), "d-2", "impression"),
                  engaged(ws, "p2", t + timedelta(minutes=3), "d-2", "impression"),  # shown again: one message
                  order(ws, "p1", t + timedelta(hours=2), 39000),
                  order(ws, "p3", t + timedelta(days=4), 10000))  # outside the 3-day window: not attributed

    async def ready():
        rows = await stats_of(metrics, ws, "node", "variant", journey_id="cart")
        return rows if sum(c.sent for _, c in rows) == 3 and sum(c.converted for _, c in rows) == 1 else None
    rows = dict((tuple(sorted(g.items())), c) for g, c in await eventually(ready))
    a = rows[(("node", "d1"), ("variant", "a"))]
    assert (a.sent, a.opened, a.machine_opened, a.clicked, a.clicks, a.converted, a.revenue) == (2, 1, 1, 1, 2, 1, 39000)
    assert (a.open_rate, a.click_rate, a.conversion_rate, a.click_to_open_rate) == (0.5, 0.5, 0.5, 1.0)
    assert a.impressions == 1
    assert dict(a.suppressed_by_reason) == {"fatigue:rules[0]": 1} and a.suppressed == 1
    b = rows[(("node", "d1"), ("variant", "b"))]
    assert (b.sent, b.converted, b.revenue) == (1, 0, 0)

    by_day = await stats_of(metrics, ws, "day", journey_id="cart")
    assert [g["day"] for g, _ in by_day] == sorted({g["day"] for g, _ in by_day})  # a series for charts


async def test_an_order_before_its_message_arrives_is_attributed_once_the_message_does(metrics, redis, ws):
    t = NOW - timedelta(hours=5)
    await publish(redis, order(ws, "p1", t + timedelta(hours=1), 5000))
    await eventually(lambda: _orders_seen(metrics, ws, "p1", 1))
    await publish(redis, sent(ws, "p1", t, "d-early", node="d0"), sent(ws, "p1", t + timedelta(minutes=30), "d-late"))

    async def attributed():
        rows = await stats_of(metrics, ws, "node", journey_id="cart")
        return {g["node"]: c.converted for g, c in rows} == {"d0": 0, "d1": 1}
    await eventually(attributed)


async def _orders_seen(metrics, ws, profile, count) -> bool:
    value = await metrics.GetCustomerValue(pb.CustomerValueRequest(context=common_pb2.RequestContext(workspace_id=ws),
                                                                   profile_id=profile))
    return value.orders == count


async def test_a_merge_joins_two_customers_and_an_erasure_names_nobody_but_keeps_the_counts(metrics, redis, ws):
    t = NOW - timedelta(hours=6)
    # the message went to the anonymous profile; the known one ordered
    await publish(redis, sent(ws, "anon", t, "d-m"), order(ws, "known", t + timedelta(hours=1), 12000),
                  order(ws, "known", t + timedelta(hours=2), 3000))
    await eventually(lambda: _orders_seen(metrics, ws, "known", 2))
    [(_, before)] = await stats_of(metrics, ws, journey_id="cart")
    assert before.converted == 0  # different people so far

    await publish(redis, fact("profile.merged", ws, "known", NOW, survivor_id="known", merged_id="anon"))

    async def attributed():
        [(_, counts)] = await stats_of(metrics, ws, journey_id="cart")
        return counts if counts.converted == 2 else None
    merged = await eventually(attributed)
    assert (merged.sent, merged.revenue) == (1, 15000)
    await publish(redis, order(ws, "anon", t + timedelta(hours=3), 1000))  # late, under the merged id
    await eventually(lambda: _orders_seen(metrics, ws, "known", 3))

    await publish(redis, fact("profile.deleted", ws, "known", NOW + timedelta(seconds=1)))
    await eventually(lambda: _orders_seen(metrics, ws, "known", 0))
    await publish(redis, sent(ws, "known", t + timedelta(hours=4), "d-late"))  # a send announced after the erasure

    async def late_counted():
        [(_, counts)] = await stats_of(metrics, ws, journey_id="cart")
        return counts if counts.sent == 2 else None
    erased = await eventually(late_counted)
    assert (erased.converted, erased.revenue) == (3, 16000)  # the journey's numbers stay
    context = common_pb2.RequestContext(workspace_id=ws)
    assert (await metrics.GetValueDistribution(pb.ValueDistributionRequest(context=context))).customers == 0
    assert not await _orders_seen(metrics, ws, "known", 1)  # and nobody is named


async def test_replaying_the_same_facts_changes_no_count(metrics, redis, ws):
    t = NOW - timedelta(hours=3)
    facts = [sent(ws, "p1", t, "d-1"), engaged(ws, "p1", t + timedelta(minutes=1), "d-1", "opened"),
             engaged(ws, "p1", t + timedelta(minutes=2), "d-1", "clicked"), order(ws, "p1", t + timedelta(hours=1), 7000)]
    await publish(redis, *facts)

    async def counted():
        rows = await stats_of(metrics, ws, journey_id="cart")
        return rows if rows and rows[0][1].converted == 1 and rows[0][1].clicks == 1 else None
    before = (await eventually(counted))[0][1]
    await publish(redis, *facts, *facts)  # the same events (same ids) delivered twice more
    # a marker on each stream after the replays: once all three show, every replay was consumed
    await publish(redis, sent(ws, "p9", t, "d-marker", channel="sms"),
                  fact("engagement.clicked", ws, "p9", t + timedelta(minutes=1), delivery_id="d-marker",
                       channel="sms", template_id="tpl-d1", journey_id="cart", journey_version=1, node_id="d1",
                       variant="a", link_id=0, url="https://shop.kr/m", machine=False, utm={}),
                  order(ws, "p9", t + timedelta(hours=1), 1))

    async def markers_seen():
        return any(c.sent and c.clicks and c.converted for _, c in await stats_of(metrics, ws, channel="sms"))
    await eventually(markers_seen)
    after = (await stats_of(metrics, ws, journey_id="cart", channel="email"))[0][1]
    assert after == before


def test_two_proportion_test_against_a_hand_computed_example():
    # control 100 of 1000, variant 130 of 1000: pooled p = 0.115,
    # z = 0.03 / sqrt(0.115 × 0.885 × (1/1000 + 1/1000)) = 2.1027406…, two-sided p = 0.0354885…
    result = stats.compare(1000, 130, 1000, 100, "a")
    assert result.lift == pytest.approx(0.03, abs=1e-12)
    assert result.z == pytest.approx(2.102740605622114, abs=1e-6)
    assert result.p_value == pytest.approx(0.03548845046647475, abs=1e-6)
    # 95% CI of the lift with the unpooled error: 0.03 ± 1.959964 × sqrt(0.1×0.9/1000 + 0.13×0.87/1000)
    assert (result.ci_low, result.ci_high) == (pytest.approx(0.0020679344, abs=1e-6),
                                               pytest.approx(0.0579320656, abs=1e-6))
    assert result.significant and result.relative_lift == pytest.approx(0.3)


async def test_experiment_and_holdout_from_journey_runs(metrics, redis, ws):
    t = NOW - timedelta(days=2)
    facts = []
    for variant, runs, converted in (("a", 1000, 100), ("b", 1000, 130), ("holdout", 200, 12)):
        for n in range(runs):
            run = f"{variant}-{n}"
            facts.append(fact("journey.step", ws, run, t, journey_id="ab", version=1, run_id=run, node_id="split",
                              kind="split", outcome=variant, variant=variant))
            if n < converted:
                facts.append(fact("journey.ended", ws, run, t + timedelta(hours=1), journey_id="ab", version=1,
                                  run_id=run, node_id="wait", kind="converted", outcome="Order Completed",
                                  variant=variant))
    await publish(redis, *facts)
    request = pb.ExperimentRequest(context=common_pb2.RequestContext(workspace_id=ws), journey_id="ab")

    async def complete():
        reply = await metrics.GetExperiment(request)
        by = {v.variant: v for v in reply.variants}
        return by if sum(v.conversions for v in by.values()) == 242 and sum(v.runs for v in by.values()) == 2200 else None
    by = await eventually(complete)
    assert [(v, by[v].runs, by[v].conversions) for v in ("a", "b", "holdout")] == [
        ("a", 1000, 100), ("b", 1000, 130), ("holdout", 200, 12)]
    [vs_control, vs_holdout] = by["b"].comparisons
    assert (vs_control.against, vs_holdout.against) == ("a", "holdout")
    assert vs_control.p_value == pytest.approx(0.03548845046647475, abs=1e-6)
    assert vs_holdout.lift == pytest.approx(0.13 - 0.06)

    funnel = await metrics.GetFunnel(pb.FunnelRequest(context=common_pb2.RequestContext(workspace_id=ws),
                                                      journey_id="ab"))
    assert [(s.stage, s.runs) for s in funnel.stages] == [("split", 2200), ("converted", 242)]


async def test_customer_value_and_data_quality(metrics, redis, ws):
    t = NOW - timedelta(days=30)
    await publish(redis, order(ws, "loyal", t, 30000), order(ws, "loyal", t + timedelta(days=10), 50000),
                  order(ws, "loyal", t + timedelta(days=20), 40000), order(ws, "once", t, 10000),
                  fact("ingest.dropped", ws, "", NOW, duplicates=3, rejected={"userId": 2}, erased=2),
                  fact("delivery.failed", ws, "once", NOW, delivery_id="d-x", channel="", journey_id="",
                       rule="no_channel", unreachable=["sms", "alimtalk"]),
                  fact("delivery.failed", ws, "once", NOW, delivery_id="d-y", channel="", journey_id="",
                       rule="no_channel", unreachable=["sms", "push"]))  # the same person again: counted once
    context = common_pb2.RequestContext(workspace_id=ws)
    await eventually(lambda: _orders_seen(metrics, ws, "loyal", 3))
    loyal = await metrics.GetCustomerValue(pb.CustomerValueRequest(context=context, profile_id="loyal"))
    assert (loyal.orders, loyal.revenue, loyal.average_order_value, loyal.days_since_last_order) == (
        3, 120000, 40000, 10)
    assert loyal.churn_risk == pytest.approx(1 - 2.718281828459045 ** -1, abs=1e-3)  # one gap (10 days) overdue
    distribution = await metrics.GetValueDistribution(pb.ValueDistributionRequest(context=context))
    assert (distribution.customers, distribution.revenue, distribution.repeat_rate) == (2, 130000, 0.5)

    async def quality():
        reply = await metrics.GetDataQuality(pb.DataQualityRequest(context=context, **{"from": timestamp(t)}))
        today = [d for d in reply.days if d.duplicates_dropped]
        return today[0] if today and "push" in today[0].missing_contact_by_channel else None
    day = await eventually(quality)
    assert (day.duplicates_dropped, dict(day.rejected_by_reason), day.erased_dropped) == (3, {"userId": 2}, 2)
    assert dict(day.missing_contact_by_channel) == {"sms": 1, "alimtalk": 1, "push": 1}  # profiles, not sends
    days = (await metrics.GetDataQuality(pb.DataQualityRequest(context=context))).days
    assert sum(d.events for d in days) == 4 and {d.ingest_lag_p50_seconds for d in days if d.events} == {2.0}


async def test_a_batch_of_mixed_facts_keeps_every_column(metrics, redis, ws):
    t = NOW - timedelta(hours=1)
    page = fact("event.page", ws, "p1", t, event_id=str(uuid.uuid4()), type="page", name="Home")
    await publish(redis, page, order(ws, "p1", t, 30000), sent(ws, "p1", t, "d-1"))  # read as one batch
    await eventually(lambda: _orders_seen(metrics, ws, "p1", 1))
    value = await metrics.GetCustomerValue(pb.CustomerValueRequest(context=common_pb2.RequestContext(workspace_id=ws),
                                                                   profile_id="p1"))
    assert value.revenue == 30000
    quality = await metrics.GetDataQuality(pb.DataQualityRequest(context=common_pb2.RequestContext(workspace_id=ws)))
    assert sum(d.events for d in quality.days) == 2 and not any(d.missing_contact_by_channel for d in quality.days)
