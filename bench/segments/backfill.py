"""3. the backfill of a new segment over N profiles, seeded with COPY into a second segment
service's database, against the hand-written SQL count."""

import asyncio
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from bench import harness
from bench.harness import Processes, RedisUndo
from bench.segments.report import Backfill, Row
from bench.segments.service import Segments, start_segment_service
from nudge.segment.v1 import segment_pb2

BACKFILL_RULE = {"event": "Order Completed", "count": {"op": "gte", "value": 1}, "within": "P30D"}
BACKFILL_SQL = ("SELECT count(*) FROM (SELECT profile_id FROM events WHERE workspace_id = $1 "
                "AND name = 'Order Completed' AND at > now() - interval '30 days' GROUP BY profile_id) t")
EVENT_COLUMNS = ["workspace_id", "id", "profile_id", "name", "at", "properties"]
PROFILE_COLUMNS = ["workspace_id", "profile_id", "traits", "last_seen", "series"]
status = harness.reporter("bench.segments")


async def bench_backfill(args, procs: Processes, keys: RedisUndo, url: str, rng: random.Random,
                         run_id: str) -> Backfill:
    """A second segment service on a database loaded with profiles and their orders: the
    hand-written count over them, then the service's backfill of a segment asking the same."""
    workspace_id = f"bench-{run_id}"
    address = await start_segment_service(args, procs, keys, "backfill", url, f"bench-backfill-{run_id}",
                                          NUDGE_BACKFILL_BATCH=str(args.backfill_batch))
    # Set-based seeding into the service's (migrated) tables: a million profiles through the
    # stream would take the service hours; the backfill only reads profiles and events.
    status(f"loading {args.profiles:,} profiles and their orders (COPY)")
    conn = await asyncpg.connect(url)
    try:
        await load_orders(conn, workspace_id, args.profiles, rng)
        await conn.execute("ANALYZE")
        status("hand-written SQL count (3 runs, median)")
        expected, sql_seconds = await time_sql_count(conn, workspace_id)
    finally:
        await conn.close()

    status(f"backfill of a new segment over {args.profiles:,} profiles, batches of {args.backfill_batch:,}")
    api = Segments(address, workspace_id)
    try:
        segment = await api.create("ordered in 30 days", BACKFILL_RULE)
        seconds, slowest = await watch_backfill(api, segment.id, procs, args.profiles)
        members = (await api.segments.CountMembers(segment_pb2.CountMembersRequest(
            context=api.context, id=segment.id), timeout=60)).count
    finally:
        await api.close()
    procs.stop("backfill")
    if members != expected:
        raise RuntimeError(f"the backfill found {members:,} members, the SQL {expected:,}")
    return Backfill(Row("Nudge backfill", rate=args.profiles / seconds, seconds=seconds),
                    Row("hand-written SQL count", rate=args.profiles / sql_seconds, seconds=sql_seconds),
                    members, slowest)


async def load_orders(conn, workspace_id: str, count: int, rng: random.Random, chunk: int = 50_000) -> None:
    """`count` profiles and their orders, COPYed into the service's tables `chunk` profiles at a time."""
    now, started, loaded = datetime.now(timezone.utc), time.perf_counter(), 0
    for start in range(0, count, chunk):
        profiles, events = orders_of(workspace_id, min(count, start + chunk) - start, now, rng)
        await conn.copy_records_to_table("profiles", records=profiles, columns=PROFILE_COLUMNS)
        await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
        loaded += len(profiles)
        if loaded % 200_000 == 0 or loaded == count:
            status(f"  {loaded:,} profiles loaded ({time.perf_counter() - started:.0f} s)")


def orders_of(workspace_id: str, count: int, now: datetime, rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    """`count` profiles' rows, each last seen at the later of its one or two orders in the last
    60 days, and those orders' rows."""
    profiles, events = [], []
    for _ in range(count):
        profile_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        last = None
        for _ in range(rng.choice((1, 2))):
            # No order within 2 hours of the 30-day edge: the run takes far less, so
            # the SQL and the backfill (at different moments) see the same orders.
            days = rng.uniform(0, 58)
            days += 0 if days < 29.9 else 0.2
            at = now - timedelta(days=days)
            last = max(last or at, at)
            events.append((workspace_id, uuid.uuid4(), profile_id, "Order Completed", at,
                           f'{{"revenue": {rng.randrange(5_000, 200_000, 100)}}}'))
        profiles.append((workspace_id, profile_id, "{}", last, "{}"))
    return profiles, events


async def time_sql_count(conn, workspace_id: str) -> tuple[int, float]:
    """The members the hand-written SQL counts, and its median time of 3 runs."""
    times, expected = [], None
    for _ in range(3):
        began = time.perf_counter()
        expected = await conn.fetchval(BACKFILL_SQL, workspace_id)
        times.append(time.perf_counter() - began)
    return expected, statistics.median(times)


async def watch_backfill(api: Segments, segment_id: str, procs: Processes, profiles: int) -> tuple[float, float]:
    """Until the segment's backfill is done: its seconds (finished_at − started_at, as the
    service records them) and the slowest batch. The service backfills in its own loop; its
    progress (`done`) moves a batch at a time, so the slowest batch is the longest wait
    between two moves (polled at 20 ms)."""
    moved, shown, done, slowest = time.perf_counter(), time.perf_counter(), 0, 0.0
    while (found := (await api.get(segment_id)).backfill).state != "done":
        procs.check("backfill")
        if found.done != done:
            slowest, moved, done = max(slowest, time.perf_counter() - moved), time.perf_counter(), found.done
        if time.perf_counter() - shown > 15:
            shown = time.perf_counter()
            status(f"  {done:,} of {profiles:,} profiles")
        await asyncio.sleep(0.02)
    slowest = max(slowest, time.perf_counter() - moved)
    return (found.finished_at.ToDatetime() - found.started_at.ToDatetime()).total_seconds(), slowest
