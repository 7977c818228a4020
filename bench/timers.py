"""python -m bench.timers: the journey service's durable timers, fired by real journey
processes, next to the bare claim SQL measured in the same run.

1. N timers due at once: fired/s and lateness (fire time − due time) p50/p99, against the
   repository's own claim statement run by bare asyncpg loops over an identically seeded
   table (claim, then move the claimed rows a day on, as firing does);
2. timers falling due at a steady rate: lateness p50/p99, against the same bare loops
   polling as the service polls.

Each firing is one step of the journey `a: wait PT1S → b: wait P1D → c: exit`: the run,
standing at `a` with its wait over, records "waited" at a and "wait" at b and gets a timer
a day later. No step calls another service, so the run measures the timer machinery: claim
under a lease, lock, step, and the run, steps, timer and outbox written in one transaction.

The journey processes (`python -m services.journey`) run on a fresh database of the local
PostgreSQL; everything the run creates (the database, its stream entries and consumer
groups in Redis) is removed at the end, and only that: other runs may share Redis.
"""

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson

from bench import harness
from bench.harness import Cpu, Processes, admin_execute, backends
from kit.payloads import EVENTS, SEGMENTS
from kit.streams import family_streams

AIM_STEPS_PER_SECOND, AIM_SHARE_OF_BARE, AIM_STEADY_P99_MS = 5_000, 0.60, 1_000
DEFINITION = {"trigger": {"kind": "event", "event": "Bench"}, "start": "a",
              "nodes": {"a": {"kind": "wait", "duration": "PT1S", "next": "b"},
                        "b": {"kind": "wait", "duration": "P1D", "next": "c"},
                        "c": {"kind": "exit"}}}
BURST, STEADY = "bench-burst", "bench-steady"
SEED_CHUNK = 100_000
# The journey service's defaults (NUDGE_TIMER_LEASE_SECONDS, NUDGE_TIMER_POLL_SECONDS), given
# to its processes explicitly so that the bare loops surely run with the same.
LEASE, POLL_SECONDS = timedelta(seconds=30), 0.5
# What firing does to a timer row in the bare loops: the next moment a day later, unclaimed.
MOVE_SQL = ("UPDATE timers SET due_at = due_at + interval '1 day', lease_owner = NULL, lease_until = NULL "
            "WHERE run_id = ANY($1::uuid[]) RETURNING due_at - interval '1 day' AS was_due")


status = harness.reporter("bench.timers")


# -- the claim statement ---------------------------------------------------------------
# The journey service's claim of due timers (JourneyRepository.claim_timers), written out:
# the benchmark does not import the service. tests/bench checks it is still the same text.
CLAIM_SQL = (
    "UPDATE timers SET lease_owner = :owner, lease_until = :until FROM ("
    "  SELECT t.run_id FROM timers AS t JOIN journeys AS j"
    "    ON j.workspace_id = t.workspace_id AND j.id = t.journey_id AND j.status = 'published'"
    "  WHERE t.due_at <= :now AND (t.lease_until IS NULL OR t.lease_until < :now)"
    "  ORDER BY t.due_at LIMIT :limit FOR UPDATE OF t SKIP LOCKED) AS due "
    "WHERE timers.run_id = due.run_id RETURNING timers.run_id, timers.due_at")


def claim_sql() -> tuple[str, list[str]]:
    """CLAIM_SQL with asyncpg's $n parameters, and the parameter names in $n order."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, CLAIM_SQL), names


# -- seeding ---------------------------------------------------------------------------
async def add_journey(conn, workspace_id: str, journey_id: str, state: str, at: datetime) -> None:
    definition = orjson.dumps(DEFINITION).decode()
    await conn.execute("INSERT INTO journeys (workspace_id, id, name, status, version, definition, created_at, "
                       "updated_at) VALUES ($1, $2, $2, $3, 1, $4::jsonb, $5, $5)",
                       workspace_id, journey_id, state, definition, at)
    await conn.execute("INSERT INTO journey_versions (workspace_id, journey_id, version, definition, published_at) "
                       "VALUES ($1, $2, 1, $3::jsonb, $4)", workspace_id, journey_id, definition, at)


async def seed_runs(conn, workspace_id: str, journey_id: str, count: int, first_due: datetime,
                    spacing: timedelta, show: bool) -> None:
    """`count` runs standing at `a` (entered a second before their wait ends), run n (from
    1) due at first_due + (n − 1) × spacing, and a timer row each at that moment (INSERT …
    SELECT over generate_series, in chunks)."""
    started = time.perf_counter()
    for start in range(1, count + 1, SEED_CHUNK):
        end = min(count, start + SEED_CHUNK - 1)
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO runs (id, workspace_id, journey_id, version, profile_id, status, node_id, seq, wait, "
                "context, entered_at) "
                "SELECT md5($1 || ':' || $2 || ':' || n)::uuid, $1, $2, 1, $2 || '-' || n, 'active', 'a', 2, "
                "jsonb_build_object('until', to_json(due.at) #>> '{}'), jsonb_build_object('trace', jsonb_build_object("
                "'traceparent', '00-' || md5($2 || n) || '-' || left(md5(n || $2), 16) || '-01')), "
                "due.at - interval '1 second' "
                "FROM generate_series($3::int, $4::int) AS n, "
                "LATERAL (SELECT $5::timestamptz + (n - 1) * $6::interval AS at) AS due",
                workspace_id, journey_id, start, end, first_due, spacing)
            await conn.execute(
                "INSERT INTO timers (run_id, workspace_id, journey_id, due_at) "
                "SELECT md5($1 || ':' || $2 || ':' || n)::uuid, $1, $2, $5::timestamptz + (n - 1) * $6::interval "
                "FROM generate_series($3::int, $4::int) AS n",
                workspace_id, journey_id, start, end, first_due, spacing)
        if show and (end % 200_000 == 0 or end == count):
            status(f"  {end:,} runs and timers ({time.perf_counter() - started:.0f} s)")


async def seed_bare(conn, workspace_id: str) -> None:
    """Schema `bare`: copies of `journeys` and `timers` (same columns and indexes) with the
    burst's timers, in the same heap order, and its journey published."""
    await conn.execute("CREATE SCHEMA bare")
    for table in ("journeys", "timers"):
        await conn.execute(f"CREATE TABLE bare.{table} (LIKE public.{table} INCLUDING ALL)")
    await conn.execute("INSERT INTO bare.journeys SELECT * FROM public.journeys WHERE workspace_id = $1", workspace_id)
    await conn.execute("UPDATE bare.journeys SET status = 'published'")
    await conn.execute("INSERT INTO bare.timers SELECT * FROM public.timers WHERE journey_id = $1", BURST)


async def vacuum(url: str, *tables: str) -> None:
    """What autovacuum (off on the benchmark server) would have done by then."""
    await admin_execute(url, *(f"VACUUM (ANALYZE) {t}" for t in tables))


# -- measurements ------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    rate: float | None = None                          # timers/s
    seconds: float | None = None
    latencies: dict[str, float] = field(default_factory=dict)  # p50 / p99 / max, ms
    cpu: Cpu | None = None
    count: int = 0


@dataclass
class Burst:
    nudge: Row
    bare: Row
    tenths: list[float]
    relay_seconds: float | None


@dataclass
class Steady:
    nudge: Row
    bare: Row
    count: int


async def bare_loops(url: str, loops: int, batch: int, lease: timedelta, expected: int, poll: float | None,
                     deadline: float, cpu: Cpu | None = None) -> tuple[float, list[float]]:
    """The claim statement in `loops` asyncpg connections on schema `bare`, each claim
    followed by moving the claimed rows a day on. With `poll` None a loop stops at its
    first short claim (a burst: every row is due from the start, whose lateness counts
    from the start); otherwise it sleeps `poll` after a short claim, as the service does,
    until `expected` rows were claimed. Returns the seconds and each claimed row's
    lateness (ms, claim returned − due)."""
    statement, names = claim_sql()
    conns = [await asyncpg.connect(url, server_settings={"search_path": "bare"}) for _ in range(loops)]
    claimed, lateness = [0], []
    try:
        claim = [await c.prepare(statement) for c in conns]
        move = [await c.prepare(MOVE_SQL) for c in conns]

        async def loop(i: int) -> None:
            while claimed[0] < expected and time.monotonic() < deadline:
                now = datetime.now(timezone.utc)
                args = {"owner": f"bare-{i}", "until": now + lease, "now": now, "limit": batch}
                rows = await claim[i].fetch(*(args[n] for n in names))
                returned = datetime.now(timezone.utc)
                if rows:
                    moved = await move[i].fetch([r["run_id"] for r in rows])
                    lateness.extend((returned - (r["was_due"] if poll else began)).total_seconds() * 1000
                                    for r in moved)
                    claimed[0] += len(rows)
                if len(rows) < batch:
                    if poll is None:
                        return
                    await asyncio.sleep(poll)

        servers = [c.get_server_pid() for c in conns]
        if cpu:
            cpu.start([os.getpid()], servers)
        began, started = datetime.now(timezone.utc), time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(loops)))
        seconds = time.perf_counter() - started
        if cpu:
            cpu.stop([os.getpid()], servers)
    finally:
        for conn in conns:
            await conn.close()
    if claimed[0] != expected:
        raise RuntimeError(f"the bare claim loops claimed {claimed[0]:,} of {expected:,} timers")
    return seconds, lateness


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": ordered[int(0.5 * (len(ordered) - 1))], "p99": ordered[int(0.99 * (len(ordered) - 1))],
            "max": ordered[-1]}


async def fired_steps(conn, journey_id: str, due_sql: str, *params) -> dict:
    """Count, distinct runs, last moment and lateness percentiles of the journey's "waited"
    steps; `due_sql` is each step's due moment (the timer row is `t`)."""
    row = await conn.fetchrow(
        f"SELECT count(*) AS n, count(DISTINCT s.run_id) AS runs, max(s.at) AS last, "
        f"percentile_disc(ARRAY[0.5, 0.99, 1.0]) WITHIN GROUP "
        f"(ORDER BY extract(epoch FROM s.at - {due_sql})::float8 * 1000) AS ms "
        f"FROM steps AS s JOIN timers AS t ON t.run_id = s.run_id "
        f"WHERE s.journey_id = $1 AND s.kind = 'waited'", journey_id, *params)
    return dict(row)


async def wait_fired(conn, procs: Processes, journey_id: str, last_due: datetime, timeout: float) -> float:
    """Polls until no timer of the journey is at or before its last due moment (every run
    fired and its timer moved a day on); returns when (perf_counter)."""
    deadline, shown, began = time.monotonic() + timeout, time.monotonic(), time.monotonic()
    while await conn.fetchval("SELECT EXISTS (SELECT 1 FROM timers WHERE due_at <= $1 AND journey_id = $2)",
                              last_due, journey_id):
        procs.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timers of {journey_id} still due after {timeout:.0f} s")
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            done = await conn.fetchval("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'steps'")
            status(f"  about {done // 2:,} fired in all ({time.monotonic() - began:.0f} s)")
        await asyncio.sleep(0.1)
    return time.perf_counter()


async def check_fired(conn, journey_id: str, count: int) -> None:
    """Every run fired exactly once: one "waited" step each, standing at b with a timer a day after its due moment."""
    runs = await conn.fetchval("SELECT count(*) FROM runs WHERE journey_id = $1 AND node_id = 'b' AND seq = 4 "
                               "AND status = 'active'", journey_id)
    moved = await conn.fetchval("SELECT count(*) FROM timers AS t JOIN runs AS r ON r.id = t.run_id "
                                "WHERE t.journey_id = $1 AND t.due_at = (r.wait ->> 'until')::timestamptz "
                                "AND t.due_at = r.entered_at + interval '1 second' + interval '1 day'", journey_id)
    if runs != count or moved != count:
        raise RuntimeError(f"{journey_id}: {runs:,} of {count:,} runs at b after one step, "
                           f"{moved:,} timers a day after their due moment")


def start_journeys(args, procs: Processes, url: str, group: str) -> list[str]:
    """The journey processes; returns their gRPC addresses."""
    return [procs.service(f"journey-{n}", "services.journey", {
        "NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": args.redis_url, "NUDGE_MIGRATE_ON_START": "false",
        "NUDGE_CONSUMER_GROUP": group, "NUDGE_TIMER_BATCH": str(args.batch),
        "NUDGE_TIMER_LEASE_SECONDS": str(LEASE.total_seconds()), "NUDGE_TIMER_POLL_SECONDS": str(POLL_SECONDS)})
        for n in range(1, args.processes + 1)]


async def bench_burst(args, procs: Processes, url: str, pids: list[int], first_due: datetime, bare: Row) -> Burst:
    """The journey, paused while its timers were seeded and the processes started, is
    published: from that moment (`due` below) its N timers are due at once."""
    conn = await asyncpg.connect(url)
    try:
        cpu = Cpu().start(pids, await backends(conn))
        await conn.execute("UPDATE journeys SET status = 'published' WHERE id = $1", BURST)
        due = datetime.now(timezone.utc)
        began = time.perf_counter()
        ended = await wait_fired(conn, procs, BURST, first_due, timeout=max(600, args.timers / 200))
        cpu.stop(pids, await backends(conn))
        status(f"  all fired, seen after {ended - began:.1f} s; waiting for the outbox relay")
        while await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox)"):
            if time.perf_counter() - ended > 600:
                raise RuntimeError("the outbox relay did not empty the outbox within 600 s")
            await asyncio.sleep(0.2)
        relay_seconds = time.perf_counter() - began
        await check_fired(conn, BURST, args.timers)
        found = await fired_steps(conn, BURST, "$2::timestamptz", due)
        if found["n"] != args.timers or found["runs"] != args.timers:
            raise RuntimeError(f"{found['n']:,} waited steps over {found['runs']:,} runs for {args.timers:,} timers")
        seconds = (found["last"] - due).total_seconds()
        per_second = dict(list(await conn.fetch(
            "SELECT floor(extract(epoch FROM at - $2::timestamptz))::int AS s, count(*) FROM steps "
            "WHERE journey_id = $1 AND kind = 'waited' GROUP BY 1", BURST, due)))
    finally:
        await conn.close()
    tenth = seconds / 10
    tenths = [sum(n for s, n in per_second.items() if k * tenth <= s + 0.5 < (k + 1) * tenth) / tenth
              for k in range(10)]
    p50, p99, top = found["ms"]
    nudge = Row(f"Nudge journey service ({args.processes} proc)", rate=args.timers / seconds, seconds=seconds,
                latencies={"p50": p50, "p99": p99, "max": top}, cpu=cpu, count=args.timers)
    return Burst(nudge, bare, tenths, relay_seconds)


async def bench_bare_burst(args, url: str) -> Row:
    cpu = Cpu()
    seconds, lateness = await bare_loops(url, args.processes, args.batch, LEASE, args.timers, None,
                                         time.monotonic() + 3600, cpu)
    return Row(f"bare claim SQL ({args.processes} asyncpg loops)", rate=args.timers / seconds, seconds=seconds,
               latencies=percentiles(lateness), cpu=cpu, count=args.timers)


async def bench_steady(args, procs: Processes, url: str, workspace_id: str) -> Row:
    """`rate` timers a second for `steady_seconds`, starting a few seconds after they were
    written; lateness = the waited step's moment − the timer's due moment."""
    count = round(args.steady_rate * args.steady_seconds)
    conn = await asyncpg.connect(url, server_settings={"TimeZone": "UTC"})
    try:
        await add_journey(conn, workspace_id, STEADY, "published", datetime.now(timezone.utc))
        lead = 5 + count / 20_000
        first_due = datetime.now(timezone.utc) + timedelta(seconds=lead)
        spacing = timedelta(seconds=1 / args.steady_rate)
        last_due = first_due + (count - 1) * spacing
        async with conn.transaction():  # all of them visible before the first is due
            await seed_runs(conn, workspace_id, STEADY, count, first_due, spacing, show=False)
        if datetime.now(timezone.utc) > first_due:
            raise RuntimeError("seeding the steady timers took longer than their lead; lower --steady-rate")
        await wait_fired(conn, procs, STEADY, last_due, timeout=lead + args.steady_seconds + 120)
        await check_fired(conn, STEADY, count)
        found = await fired_steps(conn, STEADY, "(t.due_at - interval '1 day')")
    finally:
        await conn.close()
    if found["n"] != count or found["runs"] != count:
        raise RuntimeError(f"{found['n']:,} waited steps over {found['runs']:,} runs for {count:,} timers")
    p50, p99, top = found["ms"]
    return Row(f"Nudge journey service ({args.processes} proc)", latencies={"p50": p50, "p99": p99, "max": top},
               count=count)


async def bench_bare_steady(args, url: str, workspace_id: str) -> Row:
    count = round(args.steady_rate * args.steady_seconds)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO bare.journeys SELECT * FROM public.journeys WHERE id = $1", STEADY)
        lead = 2 + count / 50_000
        first_due = datetime.now(timezone.utc) + timedelta(seconds=lead)
        await conn.execute("INSERT INTO bare.timers (run_id, workspace_id, journey_id, due_at) "
                           "SELECT md5('bare:' || n)::uuid, $1, $2, $3::timestamptz + (n - 1) * $4::interval "
                           "FROM generate_series(1, $5::int) AS n",
                           workspace_id, STEADY, first_due, timedelta(seconds=1 / args.steady_rate), count)
        if datetime.now(timezone.utc) > first_due:
            raise RuntimeError("seeding the bare steady timers took longer than their lead")
    finally:
        await conn.close()
    _, lateness = await bare_loops(url, args.processes, args.batch, LEASE, count, POLL_SECONDS,
                                   time.monotonic() + lead + args.steady_seconds + 120)
    return Row("bare claim SQL, same polling", latencies=percentiles(lateness), count=count)


# -- the run -------------------------------------------------------------------------------
async def run(args) -> None:
    burst = steady = None
    async with harness.Run(args, "bench.timers") as bench:
        run_id, procs, keys = bench.id, bench.procs, bench.undo
        workspace_id = f"bench-{run_id}"
        keys.workspaces.add(workspace_id.encode())
        url = await bench.database("timers")
        server = await harness.server_note(args.database_url, bench.redis)
        group = f"bench-timers-{run_id}"
        for stream in family_streams(EVENTS, 1) + family_streams(SEGMENTS, 1):
            await keys.create_group(stream, group)  # at the end: the processes read nothing of before
        await harness.migrate(procs, "services.journey", url, args.redis_url, NUDGE_CONSUMER_GROUP=group)
        # Set-based seeding into the service's (migrated) tables: a million waiting runs
        # through its API would take hours; the service only ever reads them.
        conn = await asyncpg.connect(url, server_settings={"TimeZone": "UTC"})
        try:
            first_due = datetime.now(timezone.utc).replace(microsecond=0)
            await add_journey(conn, workspace_id, BURST, "paused", first_due)
            status(f"seeding {args.timers:,} runs waiting at a, each with a timer due at {first_due:%H:%M:%S}")
            await seed_runs(conn, workspace_id, BURST, args.timers, first_due, timedelta(0), show=True)
            status("copying the timers to schema bare")
            await seed_bare(conn, workspace_id)
        finally:
            await conn.close()
        await vacuum(url, "runs", "timers", "steps", "journeys", "bare.timers", "bare.journeys")

        status(f"bare claim SQL: {args.processes} asyncpg loops, batches of {args.batch}")
        bare_burst = await bench_bare_burst(args, url)

        status(f"starting {args.processes} journey processes")
        for n, address in enumerate(start_journeys(args, procs, url, group), start=1):
            await harness.wait_grpc(address, procs, f"journey-{n}")
        status(f"burst: {args.timers:,} timers due at once")
        burst = await bench_burst(args, procs, url, procs.pids(), first_due, bare_burst)
        if args.steady_seconds > 0:
            await vacuum(url, "runs", "timers", "steps", "outbox")
            status(f"steady: {args.steady_rate:,.0f} timers/s due for {args.steady_seconds:g} s")
            nudge_steady = await bench_steady(args, procs, url, workspace_id)
            log = "\n".join(procs.log(name, lines=10).strip() for name in procs.running).strip()
            if log:
                status(f"the journey processes logged (WARNING and above):\n{log}")
            procs.stop_all()
            status("bare claim SQL, same polling")
            steady = Steady(nudge_steady, await bench_bare_steady(args, url, workspace_id), nudge_steady.count)
        status("removing the run's stream entries")
    print_table(args, server, burst, steady)


def print_table(args, server: str, burst: Burst | None, steady: Steady | None) -> None:
    print(f"\n{os.cpu_count()} CPUs, {server}")
    print(f"{args.processes} journey processes, timer batch {args.batch}, poll {POLL_SECONDS:g} s, "
          f"outbox relay in process")
    if burst:
        nudge, bare = burst.nudge, burst.bare
        print(f"\n1. {args.timers:,} timers due at once (one step each)")
        harness.table(34, [("timers/s", 10), ("seconds", 9), ("p50 ms", 10), ("p99 ms", 10), ("CPU µs", 8),
                           ("PG µs", 7), ("Nudge ÷ this", 14)], [
            (r.name, [f"{r.rate:,.0f}", f"{r.seconds:.1f}", f"{r.latencies['p50']:,.0f}", f"{r.latencies['p99']:,.0f}",
                      f"{r.cpu.own / r.count * 1e6:,.0f}", f"{r.cpu.postgres / r.count * 1e6:,.0f}",
                      "" if r is nudge else harness.share(nudge.rate, r.rate)]) for r in (nudge, bare)])
        print("fired/s by tenth of the burst: " + " ".join(f"{rate:,.0f}" for rate in burst.tenths))
        if burst.relay_seconds is not None:
            print(f"outbox relay done {burst.relay_seconds:.1f} s after the timers were due")
        rate_met, share_met = nudge.rate >= AIM_STEPS_PER_SECOND, nudge.rate >= AIM_SHARE_OF_BARE * bare.rate
        print(f"aim ≥ {AIM_STEPS_PER_SECOND:,} steps/s ({harness.verdict(rate_met)}) "
              f"and ≥ {AIM_SHARE_OF_BARE:.0%} of the bare claim SQL ({harness.verdict(share_met)}): "
              f"{harness.verdict(rate_met and share_met)}")
    if steady:
        nudge, bare = steady.nudge, steady.bare
        print(f"\n2. {steady.count:,} timers due at {args.steady_rate:,.0f}/s for {args.steady_seconds:g} s, lateness")
        harness.table(34, [("p50 ms", 10), ("p99 ms", 10), ("max ms", 10), ("Nudge − this", 18)], [
            (r.name, [f"{r.latencies['p50']:,.0f}", f"{r.latencies['p99']:,.0f}", f"{r.latencies['max']:,.0f}",
                      "" if r is nudge else f"{nudge.latencies['p99'] - r.latencies['p99']:+,.0f} ms p99"])
            for r in (nudge, bare)])
        print(f"aim lateness p99 < {AIM_STEADY_P99_MS / 1000:g} s: "
              f"{harness.verdict(nudge.latencies['p99'] < AIM_STEADY_P99_MS)}")


def main() -> None:
    parser = harness.parser("bench.timers", __doc__)
    parser.add_argument("--timers", type=int, default=1_000_000, help="timers due at once in the burst")
    parser.add_argument("--steady-seconds", type=float, default=30,
                        help="length of the steady run (0: no steady run)")
    parser.add_argument("--steady-rate", type=float, default=1_000, help="timers falling due per second, steady run")
    parser.add_argument("--processes", type=int, default=2, help="journey processes (and bare claim loops)")
    parser.add_argument("--batch", type=int, default=200,
                        help="timers claimed per transaction (NUDGE_TIMER_BATCH)")
    args = parser.parse_args()
    if min(args.timers, args.processes, args.batch) < 1 or args.steady_seconds < 0 or args.steady_rate <= 0:
        parser.error("sizes must be positive")
    harness.run_bench("bench.timers", run(args), "processes stopped and database dropped")


if __name__ == "__main__":
    main()
