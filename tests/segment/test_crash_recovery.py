"""The segment service killed (SIGKILL) in the middle of a stream and started again: every
membership change happens, and none is announced twice."""

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from kit import db, migrations
from kit.clock import SystemClock
from kit.outbox import Outbox
from kit.payloads import EVENTS, SEGMENTS
from kit.streams import StreamEvent
from services.segment.__main__ import MIGRATIONS
from services.segment.clients import JourneyUsages
from services.segment.models import memberships, outbox
from services.segment.service import SegmentService
from tests.support.processes import free_port, service
from tests.support.waiting import eventually

PROFILES = 300


async def count_members(sessions, workspace_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(memberships).where(
            memberships.c.workspace_id == workspace_id))


async def test_kill_mid_stream_then_restart_misses_nothing_and_repeats_nothing(fresh_database, redis, redis_url,
                                                                               scratch_dir, journey_usages_server,
                                                                               tmp_path):
    url = await fresh_database("segment_crash")
    await migrations.upgrade(url, MIGRATIONS)
    engine = db.create_engine(url, pool_size=2)
    sessions = db.session_factory(engine)
    workspace_id = f"ws_crash_{uuid.uuid4().hex[:8]}"
    segments = SegmentService(sessions, redis, Outbox(outbox), SystemClock(), JourneyUsages(journey_usages_server, "service:segment"))
    once = await segments.create(workspace_id, "test-key", "bought", "",
                                 '{"event": "Order Completed", "count": {"op": "gte", "value": 1}}')
    twice = await segments.create(workspace_id, "test-key", "bought twice", "",
                                  '{"event": "Order Completed", "count": {"op": "gte", "value": 2}}')
    while await segments.backfill_once():
        pass

    # The group exists before the events do: other processes sharing this Redis trim what
    # every existing group has acknowledged, and a group that does not exist yet holds nothing.
    group = f"segment-crash-{uuid.uuid4().hex[:8]}"
    await redis.xgroup_create(EVENTS, group, id="$", mkstream=True)
    now = datetime.now(timezone.utc)
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(PROFILES):
            for k in range(2):
                event_id = str(uuid.uuid4())
                pipe.xadd(EVENTS, StreamEvent(uuid.uuid4(), "event.track", workspace_id, f"p{n:04d}",
                                              now - timedelta(minutes=k), {
                                                  "event_id": event_id, "type": "track", "event": "Order Completed",
                                                  "properties": {"revenue": 1000}}).to_fields())
        await pipe.execute()

    settings = dict(database_url=url, redis_url=redis_url, data_dir=scratch_dir, grpc_port=free_port(),
                    migrate_on_start="false", consumer_group=group, consumer_batch=10,
                    consumer_reclaim_idle_ms=500, log_level="WARNING")
    process = service("segment", tmp_path, **settings).start()
    try:
        async def well_into_the_stream() -> bool:
            process.check_running()
            return await count_members(sessions, workspace_id) >= 60
        await eventually(well_into_the_stream, timeout=120, interval=0.02)
        process.kill()
        killed_at = await count_members(sessions, workspace_id)
        assert killed_at < 2 * PROFILES, "killed too late to prove anything"

        process = service("segment", tmp_path, **settings).start()

        async def all_members() -> bool:
            process.check_running()
            return await count_members(sessions, workspace_id) >= 2 * PROFILES
        await eventually(all_members, timeout=120, interval=0.2)

        async def outbox_drained() -> bool:  # the relay has published everything
            async with sessions() as session:
                return not await session.scalar(select(func.count()).select_from(outbox))
        await eventually(outbox_drained, timeout=120, interval=0.2)
    finally:
        process.stop()
        await redis.xgroup_destroy(EVENTS, group)
        await engine.dispose()

    announced: dict[tuple[str, str], set[str]] = {}
    for _, fields in await redis.xrange(SEGMENTS):
        if fields[b"workspace_id"].decode() == workspace_id:
            event = StreamEvent.from_fields(fields)
            assert event.type == "segment.entered"
            announced.setdefault((event.profile_id, event.payload["segment_id"]), set()).add(str(event.id))
    expected = {(f"p{n:04d}", s["id"]) for n in range(PROFILES) for s in (once, twice)}
    assert set(announced) == expected
    assert all(len(ids) == 1 for ids in announced.values()), "a membership change was announced twice"
