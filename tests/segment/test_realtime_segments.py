"""The marketer's segments, driven by real events through the gateway: profile service →
nudge.events.v1 → segment service → memberships, timers, nudge.segments.v1. The segment
service's clock is moved a few minutes to cross a window's edge; the history before it is
sent with past timestamps, as an SDK replaying a backlog would.
"""

import uuid
from datetime import datetime, timedelta

import pytest

from kit.payloads import EVENTS
from kit.streams import StreamEvent
from tests.support.api import becomes, create_segment, is_member, profile_of, track
from tests.support.streams import consumed, consumed_past, last_entry, trail
from tests.support.waiting import eventually

MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clock(segment_clock):
    return segment_clock


async def test_viewed_a_product_three_times_in_three_days(workspace, segment_clock, redis, segment_platform):
    segment = await create_segment(workspace, "viewed X 3× in 3 days", {
        "event": "Product Viewed", "where": [{"property": "product_id", "op": "eq", "value": "X"}],
        "count": {"op": "gte", "value": 3}, "within": "P3D"})
    oldest = await track(workspace, "viewer", "Product Viewed", timedelta(days=3) - MINUTE, product_id="X")
    await track(workspace, "viewer", "Product Viewed", timedelta(days=1), product_id="Y")  # another product
    await track(workspace, "viewer", "Product Viewed", timedelta(days=1), product_id="X")
    profile = await profile_of(workspace, "viewer")
    await consumed(redis, segment_platform.consumer.group, workspace, "Product Viewed", 3)  # segment has seen them
    assert not await is_member(workspace, segment, profile)
    fourth = await track(workspace, "viewer", "Product Viewed", timedelta(hours=1), product_id="X")
    await becomes(workspace, segment, profile, True)

    segment_clock.advance(2 * MINUTE)  # the oldest view leaves the 3-day window: time alone
    await becomes(workspace, segment, profile, False)
    await track(workspace, "viewer", "Product Viewed", product_id="X")
    await becomes(workspace, segment, profile, True)

    entered, exited, again = await trail(redis, workspace, profile, 3)
    assert [entered["type"], exited["type"], again["type"]] == ["segment.entered", "segment.exited",
                                                                 "segment.entered"]
    assert entered["trigger"]["type"] == "event" and entered["segment_version"] == 1
    assert exited["trigger"]["type"] == "timer"
    # The entry names the event that caused it; the exit is dated at the moment the oldest
    # view left the window (not when the timer noticed it, a minute or more later).
    stored = (await workspace.admin.get(f"/v1/profiles/{profile}/events")).json()["events"]
    [fourth_id] = [e["id"] for e in stored if abs(datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
                                                  - fourth) < timedelta(milliseconds=1)]
    assert entered["trigger"]["event_id"] == fourth_id
    assert abs(datetime.fromisoformat(exited["at"]) - (oldest + timedelta(days=3))) < timedelta(milliseconds=1)


async def test_added_to_cart_and_did_not_buy_within_an_hour(workspace, segment_clock, redis, segment_platform):
    segment = await create_segment(workspace, "cart abandoned", {"all": [
        {"event": "Product Added", "last": {"op": "before", "ago": "PT1H"}},
        {"event": "Order Completed", "absent": True, "within": "PT2H"}]})
    await track(workspace, "shopper", "Product Added", timedelta(minutes=59), product_id="X")
    profile = await profile_of(workspace, "shopper")
    await consumed(redis, segment_platform.consumer.group, workspace, "Product Added", 1)  # segment has seen them
    assert not await is_member(workspace, segment, profile)
    segment_clock.advance(2 * MINUTE)  # the hour passes with no order: entry by time alone
    await becomes(workspace, segment, profile, True)
    await track(workspace, "shopper", "Order Completed", revenue=30000)
    await becomes(workspace, segment, profile, False)
    entered, exited = await trail(redis, workspace, profile, 2)
    assert entered["trigger"]["type"] == "timer" and exited["trigger"]["type"] == "event"


async def test_no_visit_for_three_days_is_churn_risk(workspace, segment_clock, redis, segment_platform):
    segment = await create_segment(workspace, "churn risk", {"last_seen": {"op": "more_than", "ago": "P3D"}})
    await track(workspace, "quiet", "Page Viewed", timedelta(days=3) - MINUTE)
    profile = await profile_of(workspace, "quiet")
    await consumed(redis, segment_platform.consumer.group, workspace, "Page Viewed", 1)  # segment has seen them
    assert not await is_member(workspace, segment, profile)
    segment_clock.advance(2 * MINUTE)
    await becomes(workspace, segment, profile, True)
    await track(workspace, "quiet", "App Opened")
    await becomes(workspace, segment, profile, False)
    await trail(redis, workspace, profile, 2)


async def test_no_purchase_in_three_months_is_dormant(workspace, segment_clock, redis, segment_platform):
    segment = await create_segment(workspace, "dormant", {"all": [
        {"event": "Order Completed", "count": {"op": "gte", "value": 1}},
        {"event": "Order Completed", "absent": True, "within": "P90D"}]})
    await track(workspace, "sleeper", "Order Completed", timedelta(days=90) - MINUTE, revenue=10000)
    await track(workspace, "sleeper", "Page Viewed", timedelta(days=10))  # visits do not count
    profile = await profile_of(workspace, "sleeper")
    await consumed(redis, segment_platform.consumer.group, workspace, "Page Viewed", 1)  # segment has seen them
    assert not await is_member(workspace, segment, profile)
    segment_clock.advance(2 * MINUTE)
    await becomes(workspace, segment, profile, True)
    await track(workspace, "sleeper", "Order Completed", revenue=5000)
    await becomes(workspace, segment, profile, False)
    await trail(redis, workspace, profile, 2)


async def test_three_purchases_a_month_is_vip(workspace, segment_clock, redis):
    segment = await create_segment(workspace, "VIP", {
        "event": "Order Completed", "count": {"op": "gte", "value": 3}, "within": "P30D"})
    for ago in (timedelta(days=30) - MINUTE, timedelta(days=10), timedelta(days=1)):
        await track(workspace, "vip", "Order Completed", ago, revenue=50000)
    profile = await profile_of(workspace, "vip")
    await becomes(workspace, segment, profile, True)
    segment_clock.advance(2 * MINUTE)  # the first order is older than a month now
    await becomes(workspace, segment, profile, False)
    await track(workspace, "vip", "Order Completed", revenue=70000)
    await becomes(workspace, segment, profile, True)
    await trail(redis, workspace, profile, 3)


async def test_merge_of_two_halves_makes_the_survivor_a_member(workspace, redis, segment_platform):
    segment = await create_segment(workspace, "pro viewers", {"all": [
        {"trait": "plan", "op": "eq", "value": "pro"},
        {"event": "Product Viewed", "count": {"op": "gte", "value": 2}, "within": "P7D"}]})
    # An anonymous visitor viewed twice; a known user has the pro plan: each half a member.
    for _ in range(2):
        response = await workspace.tracking.post("/v1/track", json={
            "anonymousId": "anon-1", "event": "Product Viewed", "properties": {"product_id": "X"}})
        assert response.status_code == 200
    response = await workspace.tracking.post("/v1/identify", json={"userId": "known-1", "traits": {"plan": "pro"}})
    assert response.status_code == 200
    known = await profile_of(workspace, "known-1")

    def identified(fields) -> bool:  # announced after the views
        event = StreamEvent.from_fields(fields)
        return event.type == "event.identify" and event.workspace_id == workspace.id and event.profile_id == known
    marker = await eventually(lambda: last_entry(redis, EVENTS, identified))
    await consumed_past(redis, EVENTS, segment_platform.consumer.group, marker)  # the segment service has seen all
    assert not await is_member(workspace, segment, known)
    # They turn out to be one person.
    response = await workspace.tracking.post("/v1/identify", json={"userId": "known-1", "anonymousId": "anon-1"})
    assert response.status_code == 200

    async def survivor_is_member():
        survivor = (await workspace.admin.get("/v1/profiles", params={"userId": "known-1"})).json()["profiles"][0]
        return survivor["mergedIds"] and await is_member(workspace, segment, survivor["id"])
    await eventually(survivor_is_member)
    count = (await workspace.admin.get(f"/v1/segments/{segment}/count")).json()
    assert count["count"] == 1


async def test_events_out_of_order_and_twice_give_the_in_order_memberships(workspace, redis):
    """The same purchases: in order to one person, shuffled (a skewed SDK clock) and each sent
    twice (a retry with the same messageId) to another."""
    segment = await create_segment(workspace, "big spenders", {
        "event": "Order Completed", "sum": "revenue", "op": "gte", "value": 100000, "within": "P7D"})
    history = [(timedelta(days=9), 80000), (timedelta(days=5), 40000), (timedelta(days=2), 30000),
               (timedelta(days=1), 35000)]
    for ago, revenue in history:
        await track(workspace, "in-order", "Order Completed", ago, revenue=revenue)
    for ago, revenue in reversed(history):
        message_id = str(uuid.uuid4())
        for _ in range(2):
            await track(workspace, "shuffled", "Order Completed", ago, message_id=message_id, revenue=revenue)
    in_order, shuffled = await profile_of(workspace, "in-order"), await profile_of(workspace, "shuffled")
    await becomes(workspace, segment, in_order, True)   # 40k + 30k + 35k in the last 7 days
    await becomes(workspace, segment, shuffled, True)
    assert [e["type"] for e in await trail(redis, workspace, shuffled, 1)] == ["segment.entered"]


async def test_backfill_of_a_new_segment_counts_existing_profiles(workspace, redis, segment_platform):
    for n in range(5):
        await track(workspace, f"buyer-{n}", "Order Completed", timedelta(days=n), revenue=1000 * n)
    for n in range(5):
        await profile_of(workspace, f"buyer-{n}")
    await consumed(redis, segment_platform.consumer.group, workspace, "Order Completed", 5)  # segment has them
    segment = await create_segment(workspace, "recent buyers", {
        "event": "Order Completed", "count": {"op": "gte", "value": 1}, "within": "PT60H"})
    body = (await workspace.admin.get(f"/v1/segments/{segment}")).json()
    assert body["backfill"]["state"] == "done" and body["backfill"]["done"] == body["backfill"]["total"] == 5
    assert (await workspace.admin.get(f"/v1/segments/{segment}/count")).json()["count"] == 3
    members = (await workspace.admin.get(f"/v1/segments/{segment}/members", params={"limit": 2})).json()
    rest = (await workspace.admin.get(f"/v1/segments/{segment}/members",
                                      params={"limit": 2, "cursor": members["nextCursor"]})).json()
    assert len(members["members"]) == 2 and len(rest["members"]) == 1 and rest["nextCursor"] is None

    preview = (await workspace.admin.post("/v1/segments/preview", json={"rules": {
        "event": "Order Completed", "sum": "revenue", "op": "gte", "value": 2000}})).json()
    assert preview["count"] == 3 and preview["total"] == 5 and len(preview["sample"]) == 3

    # An edit publishes version 2 and recomputes everyone.
    response = await workspace.admin.patch(f"/v1/segments/{segment}", json={"rules": {
        "event": "Order Completed", "count": {"op": "gte", "value": 1}, "within": "PT12H"}})
    assert response.status_code == 200 and response.json()["version"] == 2

    async def recomputed():
        return (await workspace.admin.get(f"/v1/segments/{segment}/count")).json()["count"] == 1
    await eventually(recomputed)


async def test_explain_gives_each_condition_and_its_value(workspace):
    await track(workspace, "explained", "Product Viewed", timedelta(hours=2), product_id="X")
    await track(workspace, "explained", "Product Viewed", timedelta(hours=1), product_id="X")
    profile = await profile_of(workspace, "explained")
    segment = await create_segment(workspace, "viewed but no plan", {"all": [
        {"event": "Product Viewed", "count": {"op": "gte", "value": 2}, "within": "P1D"},
        {"trait": "plan", "op": "eq", "value": "pro"}]})
    async def explained():  # once both views have reached the segment service
        response = await workspace.admin.get(f"/v1/segments/{segment}/explain/{profile}")
        return response.json() if response.status_code == 200 and response.json()["conditions"][1]["value"] == 2 \
            else None
    body = await eventually(explained)
    assert body["member"] is False
    root, views, plan = body["conditions"]
    assert root["path"] == "rules" and root["value"] == 1
    assert views["path"] == "rules.all[0]" and views["satisfied"] and views["value"] == 2
    assert plan["path"] == "rules.all[1]" and not plan["satisfied"] and "not set" in plan["reason"]
    assert body["nextChange"] is not None  # the first view leaves the day window


async def test_rule_errors_name_the_node(workspace):
    cases = [
        ({"all": [{"trait": "a", "op": "exists"}, {"trait": "b", "op": "exists"},
                  {"event": "X", "count": {"op": "gte", "value": 1}, "within": "3 days"}]}, "rules.all[2].within"),
        ({"trait": "plan", "op": "resembles", "value": "pro"}, "rules.op"),
        ({"any": []}, "rules.any"),
        ({"event": "X", "count": {"op": "gte", "value": -1}}, "rules.count.value"),
        ({"shape": "circle"}, "rules"),
    ]
    for rules, field in cases:
        response = await workspace.admin.post("/v1/segments", json={"name": "bad", "rules": rules})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["details"]["field"] == field and error["message"].startswith(field)
    assert (await workspace.admin.get("/v1/segments")).json()["segments"] == []  # nothing half-written


async def test_segment_references_refuse_cycles_and_deleting_a_used_segment(workspace):
    base = await create_segment(workspace, "base", {"trait": "plan", "op": "exists"})
    user = await create_segment(workspace, "user", {"not": {"segment": base}})
    response = await workspace.admin.patch(f"/v1/segments/{base}", json={"rules": {"segment": user}})
    assert response.status_code == 422 and "cycle" in response.json()["error"]["message"]
    response = await workspace.admin.delete(f"/v1/segments/{base}")
    assert response.status_code == 409 and "user" in response.json()["error"]["message"]
    assert (await workspace.admin.delete(f"/v1/segments/{user}")).status_code == 204
    assert (await workspace.admin.delete(f"/v1/segments/{base}")).status_code == 204
    assert (await workspace.admin.get(f"/v1/segments/{base}")).status_code == 404


async def test_rfm_scores_and_groups_follow_the_workspace_order_event(workspace):
    response = await workspace.admin.put("/v1/segment-settings/rfm",
                                         json={"orderEvent": "Purchase", "revenueProperty": "amount"})
    assert response.json() == {"orderEvent": "Purchase", "revenueProperty": "amount"}
    # Customer i: i + 1 purchases of (i + 1) × 10,000, the last one 10 - i days ago.
    for i in range(10):
        for k in range(i + 1):
            await track(workspace, f"c{i}", "Purchase", timedelta(days=10 - i, hours=k), amount=10000 * (i + 1))
            await track(workspace, f"c{i}", "Order Completed", timedelta(days=10 - i), revenue=1)  # not an order here
    ids = {await profile_of(workspace, f"c{i}"): i for i in range(10)}

    async def all_consumed():  # the stream is in order: c9's tenth purchase came last
        body = (await workspace.admin.post("/v1/segments/preview", json={"rules": {
            "event": "Purchase", "count": {"op": "gte", "value": 10}}})).json()
        return body["count"] == 1
    await eventually(all_consumed)

    async def members(segment: str) -> set[int]:
        page = (await workspace.admin.get(f"/v1/segments/{segment}/members", params={"limit": 100})).json()
        return {ids[m["profileId"]] for m in page["members"]}

    # Quintile edges over the 10 customers: last order 2.8 / 4.6 / 6.4 / 8.2 days ago, frequency
    # 2.8 / 4.6 / 6.4 / 8.2 orders, monetary 8 / 21.4 / 41.2 / 67.4 × 10,000.
    champions = await create_segment(workspace, "champions", {"rfm": "champions"})
    lost = await create_segment(workspace, "lost", {"rfm": "lost"})
    big = await create_segment(workspace, "m ≥ 4", {"rfm": {"score": "m", "op": "gte", "value": 4}})
    assert await members(champions) == {6, 7, 8, 9}
    assert await members(lost) == {0, 1}
    assert await members(big) == {6, 7, 8, 9}
    explained = (await workspace.admin.get(f"/v1/segments/{champions}/explain/"
                                           f"{next(p for p, i in ids.items() if i == 5)}")).json()
    assert explained["conditions"][0]["value"] == {"r": 3, "f": 3, "m": 3, "group": "need_attention"}
    assert explained["nextChange"] is None  # recency is ranked at each refresh of the edges, not by the second


async def test_export_streams_every_member_over_grpc(workspace, segment_platform):
    import grpc

    from nudge.common.v1 import common_pb2
    from nudge.segment.v1 import segment_pb2, segment_pb2_grpc

    for n in range(7):
        await track(workspace, f"exported-{n}", "Signed Up")
    profiles = {await profile_of(workspace, f"exported-{n}") for n in range(7)}
    segment = await create_segment(workspace, "signed up", {"event": "Signed Up", "count": {"op": "gte", "value": 1}})
    await eventually(lambda: _count_is(workspace, segment, 7))
    context = common_pb2.RequestContext(workspace_id=workspace.id)
    async with grpc.aio.insecure_channel(segment_platform.address) as channel:
        stub = segment_pb2_grpc.SegmentServiceStub(channel)
        streamed = [m async for m in stub.ExportMembers(segment_pb2.ExportMembersRequest(context=context,
                                                                                        id=segment))]
        assert {m.profile_id for m in streamed} == profiles and all(m.version == 1 for m in streamed)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            [m async for m in stub.ExportMembers(segment_pb2.ExportMembersRequest(context=context, id="nope"))]
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def _count_is(workspace, segment: str, count: int) -> bool:
    return (await workspace.admin.get(f"/v1/segments/{segment}/count")).json()["count"] == count


async def test_an_erased_profile_leaves_every_segment(workspace, redis):
    segment = await create_segment(workspace, "anyone active", {"last_seen": {"op": "less_than", "ago": "P1D"}})
    await track(workspace, "forget-me", "App Opened")
    profile = await profile_of(workspace, "forget-me")
    await becomes(workspace, segment, profile, True)
    assert (await workspace.admin.delete(f"/v1/profiles/{profile}")).status_code == 200
    await becomes(workspace, segment, profile, False)
    entered, exited = await trail(redis, workspace, profile, 2)
    assert exited["type"] == "segment.exited" and exited["trigger"] == {"type": "deleted"}
