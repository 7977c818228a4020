"""1. facts ingested/s: `python -m services.metrics` started on entries already in the
streams, against the bare asyncpg loop reading the same entries in a group of its own."""

import asyncio
import contextlib
import os
import random
import time
from datetime import datetime, timezone

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bench import harness
from bench.harness import Cpu, Processes, admin_execute, backends
from bench.metrics.facts import COLUMN_DEFAULTS, bare_insert, compare_facts, fact_record
from bench.metrics.report import Ingest, Row
from bench.metrics.streams import STREAMS, caught_up, just_before, metrics_env, xadd_entries
from bench.metrics.workload import ORDERS, fact_of, ingest_workload
from kit.streams import StreamEvent

status = harness.reporter("bench.metrics")


def log_summary(procs: Processes, names: list[str]) -> list[str]:
    """The processes' log lines (WARNING and above) counted by message, each with the last
    line of its first exception."""
    found: dict[str, list] = {}
    for name in names:
        for line in (procs.log_dir / f"{name}.log").read_text(errors="replace").splitlines():
            entry = None
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
            if not isinstance(entry, dict):
                entry = {"event": line[:200]}
            error = (entry.get("exception") or "").strip().splitlines()[-1:]
            found.setdefault(entry.get("event", ""), [0, error])[0] += 1
    return [f"{n:,}× {event}" + (f" ({error[0][:240]})" if error else "") for event, (n, error) in found.items()]


async def bench_ingest(args, procs: Processes, url: str, redis: Redis, group: str, workspace_id: str,
                       last: dict[str, bytes], expected: dict) -> tuple[Row, float]:
    """Starts the metrics processes on entries already in the streams. The time runs from
    the first consumer transaction (processed_events.processed_at) until the group has
    acknowledged every entry of the run, i.e. committed its facts; then the facts are
    compared with fact_of's rows."""
    conn = await asyncpg.connect(url)
    try:
        launched = time.perf_counter()
        for n in range(1, args.processes + 1):
            procs.service(f"metrics-{n}", "services.metrics", metrics_env(args, url, group))
        pids = procs.pids()
        deadline = time.monotonic() + 120
        while not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer_group = $1)",
                                      group):
            procs.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no fact after 120 s:\n{procs.log('metrics-1')}")
            await asyncio.sleep(0.01)
        startup = time.perf_counter() - launched
        cpu = Cpu().start(pids, await backends(conn))
        deadline, shown = time.monotonic() + max(600, len(expected) / 100), time.monotonic()
        while not await caught_up(redis, group, last):
            procs.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the metrics processes did not consume the run's entries:\n"
                                   f"{procs.log('metrics-1')}")
            if time.monotonic() - shown > 15:
                shown = time.monotonic()
                done = await conn.fetchval("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'facts'")
                status(f"  about {done:,} facts ({time.monotonic() - launched - startup:.0f} s)")
            await asyncio.sleep(0.02)
        ended = datetime.now(timezone.utc)
        cpu.stop(pids, await backends(conn))
        began = await conn.fetchval("SELECT min(processed_at) FROM processed_events WHERE consumer_group = $1", group)
        wrong = await compare_facts(conn, "facts", workspace_id, expected)
    finally:
        await conn.close()
    if wrong.get("missing"):
        raise RuntimeError(f"the metrics service stored {len(expected) - wrong['missing']:,} of the run's "
                           f"{len(expected):,} facts")
    seconds = (ended - began).total_seconds()
    return Row(f"Nudge metrics service ({args.processes} proc)", len(expected) / seconds, seconds, cpu, wrong), startup


async def bench_bare_ingest(args, url: str, redis: Redis, group: str, workspace_id: str, entries: int,
                            expected: dict) -> Row:
    """`--processes` loops, each with its own connection: XREADGROUP of the same streams with
    the same batch, fact_of, the rows by executemany of INSERT … ON CONFLICT DO NOTHING in one
    transaction per stream batch, XACK after commit. Into `bare.facts`, a copy of `facts`
    (same columns and indexes)."""
    await admin_execute(url, "CREATE SCHEMA bare", "CREATE TABLE bare.facts (LIKE public.facts INCLUDING ALL)")
    conns = [await asyncpg.connect(url) for _ in range(args.processes)]
    workspace, read, finished = workspace_id.encode(), [0], [0.0]
    try:
        async def loop(i: int) -> None:
            conn, insert = conns[i], await conns[i].prepare(bare_insert())
            while read[0] < entries:
                reply = await redis.xreadgroup(group, f"bare-{i}", {s: ">" for s in STREAMS}, count=args.batch,
                                               block=100)
                for stream, batch in reply or []:
                    rows = [fact_record(f) for _, fields in batch
                            if (f := fact_of(StreamEvent.from_fields(fields), ORDERS)) is not None]
                    async with conn.transaction():
                        await insert.executemany(rows)
                    await redis.xack(stream, group, *[entry_id for entry_id, _ in batch])
                    read[0] += sum(fields.get(b"workspace_id") == workspace for _, fields in batch)
                    if read[0] >= entries and not finished[0]:
                        finished[0] = time.perf_counter()

        servers = [c.get_server_pid() for c in conns]
        cpu = Cpu().start([os.getpid()], servers)
        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(loop(i) for i in range(args.processes))),
                                   max(600, len(expected) / 500))
        except TimeoutError:
            raise RuntimeError(f"the bare loop read {read[0]:,} of the run's {entries:,} entries: something else "
                               f"deleted entries meanwhile (a test suite on the same Redis database?)") from None
        cpu.stop([os.getpid()], servers)
        wrong = await compare_facts(conns[0], "bare.facts", workspace_id, expected)
    finally:
        for conn in conns:
            await conn.close()
    if wrong:
        raise RuntimeError(f"the bare loop's facts differ from fact_of's rows: {wrong}")
    seconds = finished[0] - started
    return Row(f"bare asyncpg loop ({args.processes} conn)", len(expected) / seconds, seconds, cpu)


async def run_ingest(args, bench: harness.Run, url: str, group: str, workspace_id: str,
                     rng: random.Random) -> Ingest:
    """Puts the run's entries on the streams, points the service's group and the bare loop's
    at them, and measures both."""
    procs, redis, keys = bench.procs, bench.redis, bench.undo
    entries, no_fact = ingest_workload(workspace_id, args.ingest_facts, rng)
    status(f"adding {len(entries):,} entries ({args.ingest_facts:,} facts, {no_fact:,} entries that "
           f"make none) to {', '.join(STREAMS)}")
    first, last = await xadd_entries(redis, entries)
    for name in (group, f"{group}-bare"):  # each reads the run's entries and what came after
        for stream in STREAMS:
            with contextlib.suppress(ResponseError):  # the migrating process's, at the end
                await redis.xgroup_destroy(stream, name)
            await keys.create_group(stream, name, just_before(first[stream]) if stream in first else "$")
    expected = {e.id: COLUMN_DEFAULTS | f for _, e in entries if (f := fact_of(e, ORDERS)) is not None}
    status(f"ingest: {args.processes} metrics process(es), consumer batch {args.batch:,}")
    nudge, startup = await bench_ingest(args, procs, url, redis, group, workspace_id, last, expected)
    logged = log_summary(procs, list(procs.running))
    procs.stop_all()
    status("bare asyncpg loop, the same entries")
    bare = await bench_bare_ingest(args, url, redis, f"{group}-bare", workspace_id, len(entries), expected)
    return Ingest(nudge, bare, len(entries), args.ingest_facts, startup, logged)
