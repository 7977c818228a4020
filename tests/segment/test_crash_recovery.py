"""The segment service killed (SIGKILL) in the middle of a stream and started again: every
membership change happens, and none is announced twice."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from kit import db, migrations
from kit.clock import SystemClock
from kit.outbox import Outbox
from kit.settings import REPO_ROOT
from kit.payloads import SEGMENTS
from kit.payloads import EVENTS
from kit.streams import StreamEvent
from services.segment.__main__ import MIGRATIONS
from services.segment.clients import JourneyUsages
from services.segment.models import memberships, outbox
from services.segment.service import SegmentService
from tests.conftest import free_port

PROFILES = 300


def start(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.segment"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def count_members(sessions, workspace_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(memberships).where(
            memberships.c.workspace_id == workspace_id))


async def test_kill_mid_stream_then_restart_misses_nothing_and_repeats_nothing(fresh_database, redis, redis_url,
                                                                               scratch_dir, journey_usages_server):
    url = await fresh_database("segment_crash")
    await migrations.upgrade(url, MIGRATIONS)
    engine = db.create_engine(url, pool_size=2)
    sessions = db.session_factory(engine)
    workspace_id = f"ws_crash_{uuid.uuid4().hex[:8]}"
    service = SegmentService(sessions, redis, Outbox(outbox), SystemClock(), JourneyUsages(journey_usages_server, "service:segment"))
    once = await service.create(workspace_id, "test-key", "bought", "",
                                '{"event": "Order Completed", "count": {"op": "gte", "value": 1}}')
    twice = await service.create(workspace_id, "test-key", "bought twice", "",
                                 '{"event": "Order Completed", "count": {"op": "gte", "value": 2}}')
    while await service.backfill_once():
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

    env = {**os.environ, "NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": redis_url, "NUDGE_DATA_DIR": str(scratch_dir),
           "NUDGE_GRPC_PORT": str(free_port()), "NUDGE_MIGRATE_ON_START": "false", "NUDGE_CONSUMER_GROUP": group,
           "NUDGE_CONSUMER_BATCH": "10", "NUDGE_CONSUMER_RECLAIM_IDLE_MS": "500", "NUDGE_LOG_LEVEL": "WARNING"}
    process = start(env)
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while await count_members(sessions, workspace_id) < 60:  # well into the stream
            assert process.poll() is None, "the segment service exited"
            assert asyncio.get_running_loop().time() < deadline, "no memberships before the kill"
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = await count_members(sessions, workspace_id)
        assert killed_at < 2 * PROFILES, "killed too late to prove anything"

        process = start(env)
        deadline = asyncio.get_running_loop().time() + 120
        while await count_members(sessions, workspace_id) < 2 * PROFILES:
            assert asyncio.get_running_loop().time() < deadline, "memberships missing after the restart"
            await asyncio.sleep(0.2)
        while True:  # the relay has published everything
            assert asyncio.get_running_loop().time() < deadline, "the outbox never drained"
            async with sessions() as session:
                if not await session.scalar(select(func.count()).select_from(outbox)):
                    break
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
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
