"""Merges and erasures arriving in any order relative to the events they concern (another
partition, another replica, a reclaimed entry), late trait changes, and RFM refreshes that
change nothing."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from kit.streams import StreamEvent
from services.segment.models import events, memberships, segments
from services.segment.service import Plan
from services.segment.repository import SegmentRepository
from tests.segment.conftest import NOW

ORDER = '{"event": "Order Completed", "count": {"op": "gte", "value": 1}}'


def order(workspace_id: str, profile_id: str, ago: timedelta = timedelta(hours=1)) -> StreamEvent:
    return StreamEvent(uuid.uuid4(), "event.track", workspace_id, profile_id, NOW - ago, {
        "event_id": str(uuid.uuid4()), "type": "track", "event": "Order Completed", "properties": {"revenue": 1}})


def merged(workspace_id: str, gone: str, survivor: str) -> StreamEvent:
    return StreamEvent(uuid.uuid4(), "profile.merged", workspace_id, survivor, NOW,
                       {"survivor_id": survivor, "merged_id": gone})


def traits(workspace_id: str, profile_id: str, at, **values) -> StreamEvent:
    return StreamEvent(uuid.uuid4(), "profile.traits_changed", workspace_id, profile_id, at, {"traits": values})


async def deliver(service, *batch: StreamEvent) -> None:
    async with service.sessions() as session, session.begin():
        await service.handle(session, list(batch))


async def members(service, workspace_id: str, segment_id: str) -> set[str]:
    async with service.sessions() as session:
        rows = await session.execute(select(memberships.c.profile_id).where(
            memberships.c.workspace_id == workspace_id, memberships.c.segment_id == segment_id))
        return set(rows.scalars())


async def new_segment(service, workspace_id: str, rules: str) -> str:
    segment = await service.create(workspace_id, "test-key", "s", "", rules)
    while await service.backfill_once():
        pass
    return segment["id"]


async def test_chained_merges_handled_out_of_order_end_at_the_last_survivor(isolated):
    ws = f"ws_chain_{uuid.uuid4().hex[:8]}"
    segment = await new_segment(isolated, ws, ORDER)
    await deliver(isolated, order(ws, "x"), traits(ws, "s", NOW, plan="pro"), traits(ws, "t", NOW, plan="pro"))
    assert await members(isolated, ws, segment) == {"x"}
    # S was merged into T first; the announcement that X was merged into S comes after.
    await deliver(isolated, merged(ws, "s", "t"))
    await deliver(isolated, merged(ws, "x", "s"))
    assert await members(isolated, ws, segment) == {"t"}
    await deliver(isolated, order(ws, "x"))  # a late event under the oldest id
    async with isolated.sessions() as session:
        owners = set((await session.execute(select(events.c.profile_id).where(events.c.workspace_id == ws))).scalars())
    assert owners == {"t"}


async def test_an_event_locked_out_by_a_merge_counts_for_the_survivor(isolated):
    ws = f"ws_race_{uuid.uuid4().hex[:8]}"
    segment = await new_segment(isolated, ws, ORDER)
    await deliver(isolated, traits(ws, "x", NOW, plan="free"), traits(ws, "s", NOW, plan="pro"))
    await deliver(isolated, merged(ws, "x", "s"))
    # The batch resolved X before the merge committed, then waited for X's lock.
    late = order(ws, "x")
    async with isolated.sessions() as session, session.begin():
        repo = SegmentRepository(session)
        await repo.insert_events(ws, [{"id": late.payload["event_id"], "profile_id": "x",
                                       "name": "Order Completed", "at": late.occurred_at, "properties": {}}])
        from rules.facts import Seen
        await isolated._evaluate(repo, ws, {"x": Plan(seen=[Seen(late.payload["event_id"], "Order Completed",
                                                                 late.occurred_at, {})])})
    assert await members(isolated, ws, segment) == {"s"}


async def test_an_erased_person_does_not_come_back_through_a_late_event(isolated):
    ws = f"ws_erase_{uuid.uuid4().hex[:8]}"
    segment = await new_segment(isolated, ws, ORDER)
    await deliver(isolated, order(ws, "x"), order(ws, "p"))
    await deliver(isolated, merged(ws, "x", "p"))
    await deliver(isolated, StreamEvent(uuid.uuid4(), "profile.deleted", ws, "p", NOW, {}))
    assert await members(isolated, ws, segment) == set()
    await deliver(isolated, order(ws, "x"), order(ws, "p"))  # late, from another partition
    assert await members(isolated, ws, segment) == set()
    async with isolated.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(events).where(events.c.workspace_id == ws)) == 0


async def test_a_late_older_trait_change_does_not_overwrite_a_newer_one(isolated):
    ws = f"ws_traits_{uuid.uuid4().hex[:8]}"
    segment = await new_segment(isolated, ws, '{"trait": "plan", "op": "eq", "value": "pro"}')
    await deliver(isolated, traits(ws, "p", NOW - timedelta(minutes=1), plan="pro"))
    await deliver(isolated, traits(ws, "p", NOW - timedelta(minutes=5), plan="free"))  # older, arrives later
    assert await members(isolated, ws, segment) == {"p"}


async def test_refreshing_rfm_edges_over_the_same_orders_changes_nothing(isolated):
    ws = f"ws_rfm_{uuid.uuid4().hex[:8]}"
    for n in range(10):
        await deliver(isolated, *[order(ws, f"c{n}", timedelta(days=10 - n, hours=k)) for k in range(n + 1)])
    segment = await new_segment(isolated, ws, '{"rfm": "champions"}')
    before = await members(isolated, ws, segment)
    assert before == {"c6", "c7", "c8", "c9"}
    for hours in (1, 2, 30):  # later refreshes over the same orders
        isolated.clock.at = NOW + timedelta(hours=hours)
        await isolated.refresh_rfm(ws)
        async with isolated.sessions() as session:
            state = await session.scalar(select(segments.c.backfill_state).where(segments.c.id == segment))
        assert state == "done"
    isolated.clock.at = NOW
    assert await members(isolated, ws, segment) == before


async def test_events_arriving_while_a_backfill_runs_are_not_lost(isolated):
    ws = f"ws_during_{uuid.uuid4().hex[:8]}"
    await deliver(isolated, *[order(ws, f"p{n:02d}", timedelta(days=40)) for n in range(12)])  # old orders
    segment = (await isolated.create(ws, "test-key", "recent", "", '{"event": "Order Completed", "count": '
                                     '{"op": "gte", "value": 1}, "within": "P30D"}'))["id"]
    # Batches of 3 profiles, in id order; new orders arrive between them, before and behind the cursor.
    for n in range(8):
        if n % 2 == 0:
            assert await isolated.backfill_once()
        await deliver(isolated, order(ws, f"p{(n * 5) % 12:02d}"))
    while await isolated.backfill_once():
        pass
    assert await members(isolated, ws, segment) == {f"p{(n * 5) % 12:02d}" for n in range(8)}
