"""Crash safety of the shared runtime: the outbox publishes what committed even when the
process died first, and a consumer that dies before ack has its entry reclaimed."""

import asyncio
import secrets
import uuid
from datetime import datetime, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Column, Integer, MetaData, Table, func, select, text
from sqlalchemy.dialects.postgresql import UUID, insert

from kit import db
from kit.consumer import StreamConsumer, processed_table
from kit.payloads import EVENTS
from kit.streams import StreamEvent, family_streams, stream_name, trim_consumed
from nudge.common.v1 import common_pb2
from nudge.profile.v1 import profile_pb2 as pb
from nudge.profile.v1 import profile_pb2_grpc
from tests.support.processes import Component, free_port, service
from tests.support.waiting import eventually


async def _start_profile(database_url: str, redis_url: str, port: int, relay: bool, log_dir) -> Component:
    return await service("profile", log_dir, database_url=database_url, redis_url=redis_url, grpc_port=port,
                         outbox_relay=str(relay).lower(), log_level="WARNING").start().serving()


async def _entries_of(redis, workspace_id: str) -> list[StreamEvent]:
    entries = await redis.xrange(EVENTS)
    return [e for e in (StreamEvent.from_fields(f) for _, f in entries) if e.workspace_id == workspace_id]


async def test_committed_event_is_published_after_the_process_died_before_its_relay_ran(
        fresh_database, redis_url, redis, tmp_path):
    database_url = await fresh_database("outbox_crash")
    workspace_id = "crash-" + secrets.token_hex(4)
    port = free_port()
    first = await _start_profile(database_url, redis_url, port, relay=False, log_dir=tmp_path)
    try:
        now = Timestamp()
        now.GetCurrentTime()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await profile_pb2_grpc.ProfileServiceStub(channel).Ingest(pb.IngestRequest(
                context=common_pb2.RequestContext(workspace_id=workspace_id),
                calls=[pb.TrackingCall(type="track", message_id="m-crash", user_id="u", event="Paid",
                                       received_at=now)]))
        assert reply.results[0].outcome == pb.IngestResult.STORED
    finally:
        first.kill()  # dies without any chance to publish
    assert await _entries_of(redis, workspace_id) == []
    engine = db.create_engine(database_url, pool_size=1)
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 1

    second = await _start_profile(database_url, redis_url, port, relay=True, log_dir=tmp_path)
    try:
        entries = await eventually(lambda: _entries_of(redis, workspace_id), interval=0.1)
        assert [(e.type, e.payload["messageId"]) for e in entries] == [("event.track", "m-crash")]
        assert entries[0].payload["event_id"] == reply.results[0].event_id
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
    finally:
        second.stop()
        await engine.dispose()


effects_metadata = MetaData()
processed = processed_table(effects_metadata)
effects = Table("effects", effects_metadata,
                Column("event_id", UUID(as_uuid=True), primary_key=True),
                Column("times", Integer, nullable=False))


async def _count_effect(session, event: StreamEvent) -> None:
    stmt = insert(effects).values(event_id=event.id, times=1)
    await session.execute(stmt.on_conflict_do_update(index_elements=[effects.c.event_id],
                                                     set_={"times": effects.c.times + 1}))


def _event() -> StreamEvent:
    return StreamEvent(id=uuid.uuid4(), type="event.track", workspace_id="w", profile_id="p",
                       occurred_at=datetime.now(timezone.utc), payload={"n": 1})


async def _idle(redis, stream: str, group: str, ms: int) -> None:
    """Until the pending entry has had no delivery for `ms`: a consumer reclaiming after `ms`
    now takes it over (its owner is taken for dead)."""
    await eventually(lambda: redis.xpending_range(stream, group, min="-", max="+", count=1, idle=ms))


@pytest.fixture
async def sessions(fresh_database):
    """A database of the consumer's own with the processed-events mark and an effects table."""
    engine = db.create_engine(await fresh_database("consumer"), pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(effects_metadata.create_all)
    yield db.session_factory(engine)
    await engine.dispose()


async def test_entry_of_a_consumer_that_died_before_ack_is_reclaimed_and_applied_once(sessions, redis):
    stream, group = f"test.consumer.{secrets.token_hex(4)}", "effects"
    event = _event()

    started, never = asyncio.Event(), asyncio.Event()

    async def dies_midway(session, ev):
        await _count_effect(session, ev)
        started.set()
        await never.wait()  # the process is killed here: no commit, no ack

    doomed = StreamConsumer(redis, sessions, processed, [stream], group, "doomed", dies_midway, block_ms=100)
    await doomed.ensure_groups()
    await redis.xadd(stream, event.to_fields())
    task = asyncio.create_task(doomed.read_once())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (await redis.xpending(stream, group))["pending"] == 1

    survivor = StreamConsumer(redis, sessions, processed, [stream], group, "survivor", _count_effect,
                              block_ms=100, reclaim_idle_ms=3000)  # long enough for a loaded machine
    assert await survivor.reclaim_once() == 0  # not idle long enough yet: the owner may be alive
    await _idle(redis, stream, group, 3000)
    assert await survivor.reclaim_once() == 1
    assert (await redis.xpending(stream, group))["pending"] == 0

    # Redelivered (a relay republished it after a crash): acked, not applied again.
    await redis.xadd(stream, event.to_fields())
    assert await survivor.read_once() == 1
    async with sessions() as session:
        assert await session.scalar(select(effects.c.times).where(effects.c.event_id == event.id)) == 1
        assert await session.scalar(select(func.count()).select_from(effects)) == 1
    assert (await redis.xpending(stream, group))["pending"] == 0


async def test_failing_handler_is_retried_then_dead_lettered(sessions, redis):
    stream, group = f"test.retry.{secrets.token_hex(4)}", "effects"

    async def broken(session, ev):
        await _count_effect(session, ev)
        raise RuntimeError("downstream is down")

    consumer = StreamConsumer(redis, sessions, processed, [stream], group, "c1", broken, block_ms=100,
                              reclaim_idle_ms=1, max_deliveries=3)
    await consumer.ensure_groups()
    event = _event()
    await redis.xadd(stream, event.to_fields())
    assert await consumer.read_once() == 0
    assert (await redis.xpending(stream, group))["pending"] == 1
    async with sessions() as session:  # the handler's write rolled back with the failure
        assert await session.scalar(select(func.count()).select_from(effects)) == 0
    for _ in range(2):  # retried through reclaim: deliveries 2 and 3 fail too
        await _idle(redis, stream, group, 1)
        assert await consumer.reclaim_once() == 0
    await _idle(redis, stream, group, 1)
    await consumer.reclaim_once()  # the 4th attempt is not made: it goes to the dead letters
    assert (await redis.xpending(stream, group))["pending"] == 0
    (_, fields), = await redis.xrange(f"{stream}.dead")
    assert StreamEvent.from_fields(fields).id == event.id and fields[b"group"] == b"effects"


def test_one_profile_always_maps_to_one_partition():
    assert stream_name(EVENTS, "p-1", 1) == EVENTS
    assert stream_name(EVENTS, "p-1", 8) == "nudge.events.v1.7"  # crc32, stable across processes and hosts
    spread = {stream_name(EVENTS, f"p-{i}", 4) for i in range(200)}
    assert spread == set(family_streams(EVENTS, 4))


async def test_trimming_keeps_every_entry_a_consumer_group_still_needs(redis):
    stream = f"test.trim.{secrets.token_hex(4)}"
    ids = [await redis.xadd(stream, _event().to_fields()) for _ in range(5)]
    await redis.xgroup_create(stream, "fast", id="0")
    await redis.xgroup_create(stream, "slow", id="0")
    await redis.xreadgroup("fast", "f1", {stream: ">"}, count=5)
    await redis.xack(stream, "fast", *ids)
    await redis.xreadgroup("slow", "s1", {stream: ">"}, count=3)
    await redis.xack(stream, "slow", ids[0])  # ids[1], ids[2] read but not acked; ids[3:] never read

    await trim_consumed(redis, stream, hard_cap=100)
    assert [entry_id for entry_id, _ in await redis.xrange(stream)] == ids[1:]

    await redis.xack(stream, "slow", ids[1], ids[2])
    await trim_consumed(redis, stream, hard_cap=100)
    assert [entry_id for entry_id, _ in await redis.xrange(stream)] == ids[3:]  # delivered to fast, not to slow

    await trim_consumed(redis, stream, hard_cap=1)  # the safety cap, for a consumer gone for good
    assert [entry_id for entry_id, _ in await redis.xrange(stream)] == ids[4:]
