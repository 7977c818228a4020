"""1. events/s evaluated: the service stopped while the entries are added, then timed until
its group has consumed them; against a bare Redis consumer of the same entries and a bare
asyncpg INSERT of the same rows."""

import time
import uuid

import asyncpg
import orjson
from redis.asyncio import Redis

from bench import harness
from bench.harness import Processes, entry_tuple, fetchval, xadd_all
from bench.segments.report import Row, Throughput
from bench.segments.service import count_entries, wait_consumed, wait_outbox_empty
from kit.payloads import EVENTS, SEGMENTS
from kit.streams import StreamEvent

status = harness.reporter("bench.segments")


async def bench_throughput(args, procs: Processes, url: str, redis: Redis, group: str, workspace_id: str,
                           events: list[StreamEvent]) -> Throughput:
    """The service is stopped (SIGSTOP) while the entries are added, then continued: the
    time runs from SIGCONT until the group has read and acknowledged the last entry."""
    encoded = [e.to_fields() for e in events]
    tail = (await redis.xrevrange(EVENTS, count=1))[0][0]
    published_tail = (await redis.xrevrange(SEGMENTS, count=1) or [(b"0-0", None)])[0][0]
    procs.pause("segment")
    try:
        last = await xadd_all(redis, EVENTS, encoded)
    finally:
        procs.resume("segment")
    started = time.perf_counter()
    ended = await wait_consumed(redis, EVENTS, group, last, procs, "segment", timeout=1800)
    seconds = ended - started
    tracked = [uuid.UUID(e.payload["event_id"]) for e in events if e.type.startswith("event.")]
    stored = await fetchval(url, "SELECT count(*) FROM events WHERE workspace_id = $1 AND id = ANY($2::uuid[])",
                            workspace_id, tracked)
    if stored != len(tracked):
        raise RuntimeError(f"the service stored {stored:,} of the run's {len(tracked):,} events")
    await wait_outbox_empty(url, procs)
    changes = await count_entries(redis, SEGMENTS, published_tail, workspace_id)
    nudge = Row("Nudge segment service", rate=len(events) / seconds, seconds=seconds)

    procs.pause("segment")  # quiet while the baselines run
    try:
        status("bare XREADGROUP + XACK")
        bare = await bare_consumer(redis, EVENTS, f"{group}-bare", tail, last, workspace_id, len(events),
                                   args.batch)
        status("asyncpg INSERT")
        insert = await bare_insert(url, workspace_id, events, args.batch)
    finally:
        procs.resume("segment")
    return Throughput(nudge, [bare, insert], changes)


async def bare_consumer(redis: Redis, stream: str, group: str, start_id: bytes, last_id: bytes,
                        workspace_id: str, count: int, batch: int) -> Row:
    """XREADGROUP (same batch size) + XACK of the same entries, no work."""
    await redis.xgroup_create(stream, group, id=start_id)
    workspace, mine = workspace_id.encode(), 0
    try:
        done, started = False, time.perf_counter()
        while not done:
            reply = await redis.xreadgroup(group, "bare", {stream: ">"}, count=batch, block=1000)
            for _, entries in reply or []:
                await redis.xack(stream, group, *[entry_id for entry_id, _ in entries])
                mine += sum(fields.get(b"workspace_id") == workspace for _, fields in entries)
                done = done or entry_tuple(entries[-1][0]) >= entry_tuple(last_id)
        seconds = time.perf_counter() - started
    finally:
        await redis.xgroup_destroy(stream, group)
    if mine != count:
        raise RuntimeError(f"the bare consumer read {mine:,} of the run's {count:,} entries: something else "
                           f"deleted entries of {stream} meanwhile (a test suite on the same Redis database?)")
    return Row("bare XREADGROUP + XACK", rate=count / seconds, seconds=seconds)


async def bare_insert(url: str, workspace_id: str, events: list[StreamEvent], batch: int) -> Row:
    """The events rows of each batch of `batch` entries in one INSERT … unnest, like the
    service's, into a copy of its events table (same indexes); one connection."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        statement = ("INSERT INTO bench_events (workspace_id, id, profile_id, name, at, properties) "
                     "SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[]) "
                     "ON CONFLICT DO NOTHING RETURNING id")
        batches = []
        for start in range(0, len(events), batch):
            rows = [e for e in events[start:start + batch] if e.type.startswith("event.")]
            batches.append(([uuid.UUID(e.payload["event_id"]) for e in rows], [e.profile_id for e in rows],
                            [e.payload["event"] for e in rows], [e.occurred_at for e in rows],
                            [orjson.dumps(e.payload["properties"]).decode() for e in rows]))
        started = time.perf_counter()
        for columns in batches:
            async with conn.transaction():
                await conn.fetch(statement, workspace_id, *columns)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return Row("asyncpg INSERT, same rows", rate=len(events) / seconds, seconds=seconds)
