"""python -m bench.metrics: the metrics service's facts ingested/s and the latency of a
journey's stats over millions of facts, each next to a bare baseline measured in the same run.

1. facts/s: stream entries of a realistic mix (sends and their outcomes, opens and clicks,
   journey runs, tracked events and orders) are on the real streams before `python -m
   services.metrics` starts, and it runs until every fact is in `facts`; against a bare
   asyncpg loop reading the same entries (XREADGROUP, the same fact rows by INSERT … ON
   CONFLICT DO NOTHING, XACK);
2. the stats of one journey by node and variant over facts seeded with SQL, p50/p95:
   GetStats over gRPC, against the same three aggregates written by hand and run by asyncpg.

The metrics processes run on a fresh database of the local PostgreSQL; everything the run
creates (the database, its stream entries and consumer groups in Redis) is removed at the
end, and only that: other runs may share Redis.
"""

import asyncio
import contextlib
import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bench import harness
from bench.harness import (DELIVERIES, ENGAGEMENT, JOURNEYS, Cpu, Processes, RedisUndo, admin_execute, backends,
                           entry_tuple)
from kit.streams import EVENTS, StreamEvent, family_streams
from nudge.common.v1 import common_pb2
from nudge.metrics.v1 import metrics_pb2, metrics_pb2_grpc
# The metrics service's own rule from a stream entry to its fact row (pure, no I/O): the
# reference every stored fact is checked against, and the bare loop's work.
from services.metrics.facts import Orders, fact_of

AIM_FACTS_PER_SECOND, AIM_STATS_RATIO = 10_000, 2.0
STREAMS = [s for family in (DELIVERIES, ENGAGEMENT, JOURNEYS, EVENTS) for s in family_streams(family, 1)]
CONSUMER_BATCH = 1_000  # the service's default NUDGE_CONSUMER_BATCH
# Stats counters by delivery (GetStats' Counts), as the hand-written SQL names them.
COUNTERS = ("sent", "delivered", "failed", "suppressed", "deferred", "opened", "machine_opened", "impressions",
            "clicked", "clicks", "unsubscribed")
ORDERS = Orders()
GROUP_BY = ["node", "variant"]
JOURNEY_COUNT = 50
TARGET = "j-00"  # the biggest journey of both workloads
CHANNELS, CHANNEL_WEIGHTS = ["email", "sms", "kakao", "push"], [50, 20, 15, 15]
RULES = ["fatigue:rules[0]", "consent:email", "quiet_hours", "fatigue:rules[1]"]
TRACKED = ["Product Viewed", "Product Added", "Search", "Checkout Started"]
PAGES = ["Home", "Category", "Product", "Cart"]
CONTEXT = {"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "ko-KR"}
CLICK_URL = "https://shop.example.com/p?utm_source=nudge&utm_campaign=cart"
SEED_DAYS, QUERY_WARMUP = 180, 2


status = harness.reporter("bench.metrics")


# -- the ingest workload ---------------------------------------------------------------
# Journey j (0…49) of the workload, the same in the stream entries and in the SQL seed:
# drawn as floor(50 · u^1.5), so a few journeys are big and most are small (j-00 is the
# biggest); 1 + j % 3 versions; every third one splits into variants a and b (and a 10%
# holdout that gets no message); 1 + (j + 2) % 3 message nodes n2…, and 2 + that + j % 2
# nodes n1… in all.
def journey_of(u: float) -> int:
    return math.floor(JOURNEY_COUNT * u ** 1.5)


def message_nodes(j: int) -> int:
    return 1 + (j + 2) % 3


def journey_name(j: int) -> str:
    return f"j-{j:02d}"


@dataclass
class Story:
    """One run of a journey for one person, as the streams tell it."""
    workspace_id: str
    profile_id: str
    rng: random.Random
    entries: list[tuple[str, StreamEvent]] = field(default_factory=list)

    def add(self, stream: str, event_type: str, at: datetime, payload: dict) -> None:
        self.entries.append((stream, StreamEvent(uuid.uuid4(), event_type, self.workspace_id, self.profile_id,
                                                 at, payload)))

    def track(self, name: str, at: datetime, props: dict, kind: str = "track") -> None:
        event_id = str(uuid.uuid4())
        received = at + timedelta(seconds=self.rng.expovariate(0.5))
        payload = {"event_id": event_id, "type": kind, "messageId": f"bench-{event_id}",
                   "userId": f"u-{self.profile_id}", "properties": props, "context": CONTEXT,
                   "timestamp": at.isoformat(), "receivedAt": received.isoformat()}
        payload["event" if kind == "track" else "name"] = name
        self.add(EVENTS, f"event.{kind}", at, payload)


def story(workspace_id: str, profile_id: str, j: int, at: datetime, rng: random.Random) -> list:
    s = Story(workspace_id, profile_id, rng)
    journey, version = journey_name(j), 1 + rng.randrange(1 + j % 3)
    run_id, variant, seq = str(uuid.uuid4()), "", 1

    def step(event_type: str, node: str, kind: str, outcome: str, when: datetime, detail: dict | None = None):
        nonlocal seq
        s.add(JOURNEYS, event_type, when, {"journey_id": journey, "version": version, "run_id": run_id,
                                           "node_id": node, "kind": kind, "outcome": outcome, "variant": variant,
                                           "seq": seq, "detail": detail or {}})
        seq += 1

    step("journey.entered", "", "entered", "entered", at)
    if j % 3 == 0:
        variant = rng.choices(["a", "b", "holdout"], [45, 45, 10])[0]
        step("journey.step", "split", "split", variant, at)
    for n in range(1, 3 + message_nodes(j) + j % 2):
        node, at = f"n{n}", at + timedelta(minutes=rng.uniform(5, 600))
        if 2 <= n <= 1 + message_nodes(j) and variant != "holdout":
            delivery_id = str(uuid.uuid4())
            step("journey.step", node, "send", "sent", at, {"delivery_id": delivery_id})
            send(s, delivery_id, journey, version, node, variant, at, rng)
        else:
            step("journey.step", node, "wait", "waited", at)
        for _ in range(rng.choice([0, 0, 1, 1, 2])):  # what the person does meanwhile
            when = at + timedelta(minutes=rng.uniform(1, 120))
            if rng.random() < 0.3:
                page = rng.choice(PAGES)
                s.track(page, when, {"path": f"/{page.lower()}", "title": page}, kind="page")
            else:
                s.track(rng.choice(TRACKED), when, {"product_id": f"p-{rng.randrange(500)}",
                                                    "price": round(rng.uniform(1, 200), 2), "currency": "KRW"})
        if rng.random() < 0.06:
            s.track(ORDERS.event, at + timedelta(minutes=rng.uniform(1, 240)),
                    {"order_id": str(uuid.uuid4()), ORDERS.revenue_property: rng.randrange(5_000, 200_000, 100),
                     "currency": "KRW"})
        if rng.random() < 0.08:  # makes no fact
            s.add(EVENTS, "profile.traits_changed", at, {"traits": {"plan": rng.choice(["free", "pro"])}})
    ending = rng.random()
    if ending < 0.8:
        kind = "converted" if ending < 0.08 else "completed" if ending < 0.56 else "exited"
        step("journey.ended", node, kind, {"converted": "goal", "completed": "end", "exited": "exit"}[kind],
             at + timedelta(minutes=1))
    return s.entries


def send(s: Story, delivery_id: str, journey: str, version: int, node: str, variant: str, at: datetime,
         rng: random.Random) -> None:
    """A send's outcome as dispatch announces it, and what the person did with the message."""
    channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
    outcome = rng.choices(["sent", "suppressed", "failed", "deferred"], [85, 9, 3, 3])[0]
    dims = {"delivery_id": delivery_id, "channel": channel, "template_id": f"tpl-{journey}-{node}-{channel}",
            "journey_id": journey, "journey_version": version, "node_id": node, "variant": variant}
    s.add(DELIVERIES, f"delivery.{outcome}", at, dims | {
        "provider": f"{channel}-provider", "template_version": 1, "advertising": True,
        "rule": rng.choice(RULES) if outcome == "suppressed" else None, "reason": "",
        "deferred_until": (at + timedelta(hours=8)).isoformat() if outcome == "deferred" else None})
    if outcome != "sent":
        return
    if rng.random() < 0.8:
        s.add(DELIVERIES, "delivery.delivered", at + timedelta(seconds=5), dims | {"provider": f"{channel}-provider"})
    opens = rng.choices([0, 1, 2, 3], [55, 30, 10, 5])[0]
    clicks = rng.choices([0, 1, 2], [70, 20, 10])[0] if opens else 0
    for kind, n in (("opened", opens), ("clicked", clicks)):
        for _ in range(n):
            when = at + timedelta(minutes=rng.uniform(1, 180))
            url = CLICK_URL if kind == "clicked" else None
            s.add(ENGAGEMENT, f"engagement.{kind}", when, dims | {
                "fact_id": str(uuid.uuid4()), "link_id": 0 if url else None, "url": url,
                "utm": {"source": "nudge", "campaign": "cart"} if url else {},
                "machine": kind == "opened" and rng.random() < 0.1, "category": None, "at": when.isoformat()})
    if rng.random() < 0.005:
        s.add(ENGAGEMENT, "engagement.unsubscribed", at + timedelta(hours=1), dims | {
            "fact_id": str(uuid.uuid4()), "link_id": None, "url": None, "utm": {}, "machine": False,
            "category": "marketing", "at": (at + timedelta(hours=1)).isoformat()})


def ingest_workload(workspace_id: str, facts: int, rng: random.Random) -> tuple[list[tuple[str, StreamEvent]], int]:
    """Runs of the 50 journeys over the last week, by 1 person in 20, in time order, cut
    where they make `facts` facts; returns the entries and how many make no fact."""
    now = datetime.now(timezone.utc)
    profiles = max(1_000, facts // 20)
    found: list[tuple[str, StreamEvent]] = []
    made = 0
    while made < facts * 1.02 + 100:  # a little over, so that the cut below is in time order
        entries = story(workspace_id, f"p-{rng.randrange(profiles)}", journey_of(rng.random()),
                        now - timedelta(days=rng.uniform(1, 8)), rng)
        found += entries
        made += sum(fact_of(e, ORDERS) is not None for _, e in entries)
    found.sort(key=lambda entry: entry[1].occurred_at)
    kept, made = [], 0
    for stream, event in found:
        made += fact_of(event, ORDERS) is not None
        if made > facts:
            break
        kept.append((stream, event))
    return kept, len(kept) - facts


# -- streams ---------------------------------------------------------------------------
def just_before(entry_id) -> str:
    """The id a group starts from to read `entry_id` next."""
    ms, seq = entry_tuple(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-18446744073709551615"


async def xadd_entries(redis: Redis, entries: list[tuple[str, StreamEvent]],
                       chunk: int = 2000) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Appends the entries in order (pipelined); returns the first and the last id of each stream."""
    first: dict[str, bytes] = {}
    last: dict[str, bytes] = {}
    for start in range(0, len(entries), chunk):
        part = entries[start:start + chunk]
        async with redis.pipeline(transaction=False) as pipe:
            for stream, event in part:
                pipe.xadd(stream, event.to_fields())
            ids = await pipe.execute()
        for (stream, _), entry_id in zip(part, ids, strict=True):
            first.setdefault(stream, entry_id)
            last[stream] = entry_id
    return first, last


async def caught_up(redis: Redis, group: str, last: dict[str, bytes]) -> bool:
    """The group has read every entry up to `last` on each stream and acknowledged them."""
    for stream, last_id in last.items():
        info = next((g for g in await redis.xinfo_groups(stream)
                     if g["name"] in (group, group.encode())), None)
        if info is None:
            raise RuntimeError(f"consumer group {group} is gone from {stream}")
        if entry_tuple(info["last-delivered-id"]) < entry_tuple(last_id):
            return False
        pending = await redis.xpending(stream, group)
        if pending["pending"] and entry_tuple(pending["min"]) <= entry_tuple(last_id):
            return False
    return True


# -- 1. ingest -------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    rate: float = 0.0            # facts/s
    seconds: float = 0.0
    cpu: Cpu | None = None
    wrong: dict[str, int] = field(default_factory=dict)  # facts stored unlike fact_of's row, by kind.column


@dataclass
class Ingest:
    nudge: Row
    bare: Row
    entries: int
    facts: int
    startup: float               # process start → its first transaction, s
    logged: list[str]            # what the metrics processes logged, by message


def metrics_env(args, url: str, group: str) -> dict[str, str]:
    return {"NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": args.redis_url, "NUDGE_MIGRATE_ON_START": "false",
            "NUDGE_CONSUMER_GROUP": group, "NUDGE_CONSUMER_BATCH": str(args.batch)}


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


FACT_COLUMNS: list[str] = []  # the service's `facts` columns in order, read once it has migrated
COLUMN_DEFAULTS = {"profile_id": "", "journey_id": "", "journey_version": 0, "node_id": "", "variant": "",
                   "channel": "", "template_id": "", "delivery_id": "", "run_id": "", "reason": "", "revenue": 0.0,
                   "machine": False, "lag_seconds": None, "detail": None}


async def read_fact_columns(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        FACT_COLUMNS[:] = [r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'facts' ORDER BY ordinal_position")]
    finally:
        await conn.close()


def bare_insert() -> str:
    return (f"INSERT INTO bare.facts ({', '.join(FACT_COLUMNS)}) "
            f"VALUES ({', '.join(f'${n}' for n in range(1, len(FACT_COLUMNS) + 1))}) ON CONFLICT DO NOTHING")


def fact_record(fact: dict) -> tuple:
    row = COLUMN_DEFAULTS | fact
    if row["detail"] is not None:
        row["detail"] = orjson.dumps(row["detail"]).decode()
    return tuple(row[c] for c in FACT_COLUMNS)


async def compare_facts(conn, table: str, workspace_id: str, expected: dict) -> dict[str, int]:
    """The run's stored facts column by column against fact_of's rows (`expected`, by id,
    with the columns' defaults): how many differ, as {"<kind>.<column>": n}, plus
    "missing" and "unexpected" facts."""
    wrong: dict[str, int] = {}

    def count(key: str) -> None:
        wrong[key] = wrong.get(key, 0) + 1

    seen = 0
    for row in await conn.fetch(f"SELECT {', '.join(FACT_COLUMNS)} FROM {table} WHERE workspace_id = $1",
                                workspace_id):
        want = expected.get(row["id"])
        if want is None:
            count("unexpected")
            continue
        seen += 1
        for column in FACT_COLUMNS:
            got = row[column]
            if column == "detail" and got is not None:
                got = orjson.loads(got)
            if got != want[column]:
                count(f"{want['kind']}.{column}")
    if seen < len(expected):
        wrong["missing"] = len(expected) - seen
    return wrong


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


# -- 2. the journey's stats ----------------------------------------------------------------
# Seeding. r(n, salt) is a number in [0, 1) drawn from n, the same every time; a delivery,
# a run and an event are each a number n, and everything about them is drawn from it.
SEED_FUNCTIONS = [
    "CREATE SCHEMA seed",
    "CREATE FUNCTION seed.r(n bigint, salt bigint) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE "
    "AS $$ SELECT (hashint8extended(n, salt) & 4294967295)::float8 / 4294967296 $$",
]
# Delivery {d}: its journey, version, node, variant, channel, person, moment, outcome, and
# how often it was opened and clicked ($4 the run's moment, $5 profiles, $6 days).
DELIVERY = """
    SELECT 'j-' || lpad(x.j::text, 2, '0') AS journey_id, 1 + floor(seed.r(x.d, 3) * (1 + x.j % 3))::int AS version,
           y.node_id, CASE WHEN x.j % 3 = 0 THEN CASE WHEN seed.r(x.d, 5) < 0.5 THEN 'a' ELSE 'b' END ELSE '' END
           AS variant, y.channel, 'tpl-j-' || lpad(x.j::text, 2, '0') || '-' || y.node_id || '-' || y.channel
           AS template_id, 'd-' || x.d AS delivery_id, 'p-' || floor($5 * seed.r(x.d, 7))::bigint AS profile_id,
           $4::timestamptz - $6 * seed.r(x.d, 8) * interval '1 day' AS at,
           CASE WHEN y.o < 0.85 THEN 'sent' WHEN y.o < 0.94 THEN 'suppressed' WHEN y.o < 0.97 THEN 'failed'
                ELSE 'deferred' END AS outcome,
           CASE WHEN y.u < 0.55 THEN 0 WHEN y.u < 0.85 THEN 1 WHEN y.u < 0.95 THEN 2 ELSE 3 END AS opens,
           CASE WHEN y.u < 0.55 OR y.c < 0.7 THEN 0 WHEN y.c < 0.9 THEN 1 ELSE 2 END AS clicks
    FROM (SELECT {d} AS d, floor(50 * seed.r({d}, 2) ^ 1.5)::int AS j) AS x,
    LATERAL (SELECT 'n' || (2 + floor(seed.r(x.d, 4) * (1 + (x.j + 2) % 3))::int) AS node_id,
                    CASE WHEN seed.r(x.d, 6) < 0.5 THEN 'email' WHEN seed.r(x.d, 6) < 0.7 THEN 'sms'
                         WHEN seed.r(x.d, 6) < 0.85 THEN 'kakao' ELSE 'push' END AS channel,
                    seed.r(x.d, 9) AS o, seed.r(x.d, 10) AS u, seed.r(x.d, 11) AS c) AS y"""
SEED_MESSAGES = f"""
    INSERT INTO facts (workspace_id, id, kind, at, day, profile_id, journey_id, journey_version, node_id, variant,
                       channel, template_id, delivery_id, reason, machine, detail)
    SELECT $1, gen_random_uuid(), k.kind, t.at, (t.at AT TIME ZONE 'Asia/Seoul')::date, m.profile_id, m.journey_id,
           m.version, m.node_id, m.variant, m.channel, m.template_id, m.delivery_id,
           CASE WHEN k.kind = 'suppressed' THEN (ARRAY{RULES!r})[1 + floor(4 * seed.r(d, 12))::int] ELSE '' END,
           k.kind = 'opened' AND seed.r(d * 8 + k.i, 13) < 0.1,
           CASE k.kind WHEN 'clicked' THEN '{{"link_id": 0, "url": "{CLICK_URL}",
                                           "utm": {{"source": "nudge", "campaign": "cart"}}}}'::jsonb
                       WHEN 'opened' THEN '{{"utm": {{}}}}'::jsonb END
    FROM generate_series($2::bigint, $3::bigint) AS d
    CROSS JOIN LATERAL ({DELIVERY.format(d="d")}) AS m
    CROSS JOIN LATERAL unnest(ARRAY[m.outcome] || CASE WHEN m.outcome = 'sent' THEN
        array_fill('delivered'::text, ARRAY[(seed.r(d, 14) < 0.8)::int]) || array_fill('opened'::text, ARRAY[m.opens])
        || array_fill('clicked'::text, ARRAY[m.clicks])
        || array_fill('unsubscribed'::text, ARRAY[(seed.r(d, 15) < 0.005)::int]) ELSE '{{}}' END)
        WITH ORDINALITY AS k(kind, i)
    CROSS JOIN LATERAL (SELECT m.at + (k.i - 1) * interval '7 minutes' AS at) AS t"""
# Run r: entered, the split draw, a step at each node (a send at the message nodes), and
# for 80% of runs its end.
SEED_RUNS = """
    INSERT INTO facts (workspace_id, id, kind, at, day, profile_id, journey_id, journey_version, node_id, variant,
                       delivery_id, run_id, reason)
    SELECT $1, gen_random_uuid(), s.kind, t.at, (t.at AT TIME ZONE 'Asia/Seoul')::date,
           'p-' || floor($5 * seed.r(r, 22))::bigint, 'j-' || lpad(x.j::text, 2, '0'), x.version, s.node_id,
           CASE WHEN s.kind = 'entered' THEN '' ELSE x.variant END, s.delivery_id, 'r-' || r, s.reason
    FROM generate_series($2::bigint, $3::bigint) AS r
    CROSS JOIN LATERAL (
        SELECT y.j, 1 + floor(seed.r(r, 23) * (1 + y.j % 3))::int AS version,
               CASE WHEN y.j % 3 <> 0 THEN '' WHEN y.v < 0.45 THEN 'a' WHEN y.v < 0.9 THEN 'b' ELSE 'holdout' END
               AS variant, 3 + (y.j + 2) % 3 + y.j % 2 AS nodes, 1 + (y.j + 2) % 3 AS messages,
               $4::timestamptz - $6 * seed.r(r, 25) * interval '1 day' AS at, seed.r(r, 26) AS ending
        FROM (SELECT floor(50 * seed.r(r, 21) ^ 1.5)::int AS j, seed.r(r, 24) AS v) AS y) AS x
    CROSS JOIN LATERAL (
        SELECT 0 AS i, 'entered' AS kind, '' AS node_id, '' AS delivery_id, '' AS reason
        UNION ALL SELECT 0, 'split', 'split', '', '' WHERE x.j % 3 = 0
        UNION ALL SELECT n, 'step', 'n' || n,
                         CASE WHEN n BETWEEN 2 AND 1 + x.messages AND x.variant <> 'holdout'
                              THEN 'd-r' || r || '-' || n ELSE '' END,
                         CASE WHEN n BETWEEN 2 AND 1 + x.messages AND x.variant <> 'holdout'
                              THEN 'send:sent' ELSE 'wait:waited' END
                  FROM generate_series(1, x.nodes) AS n
        UNION ALL SELECT x.nodes + 1, CASE WHEN x.ending < 0.08 THEN 'converted' WHEN x.ending < 0.56 THEN 'completed'
                                           ELSE 'exited' END, 'n' || x.nodes, '', 'end'
                  WHERE x.ending < 0.8) AS s
    CROSS JOIN LATERAL (SELECT x.at + s.i * interval '1 hour' AS at) AS t"""
# Event e: a tracked event or page (3% of them orders, with revenue).
SEED_EVENTS = """
    INSERT INTO facts (workspace_id, id, kind, at, day, profile_id, reason, revenue, lag_seconds)
    SELECT $1, gen_random_uuid(), CASE WHEN x.o THEN 'order' ELSE 'event' END, x.at,
           (x.at AT TIME ZONE 'Asia/Seoul')::date, 'p-' || floor($5 * seed.r(e, 32))::bigint,
           CASE WHEN x.o THEN 'Order Completed'
                ELSE (ARRAY['Product Viewed', 'Product Added', 'Search', 'Checkout Started', 'Home', 'Category',
                            'Product', 'Cart'])[1 + floor(8 * seed.r(e, 33))::int] END,
           CASE WHEN x.o THEN 5000 + 100 * floor(1950 * seed.r(e, 34)) ELSE 0 END,
           round((-2 * ln(1 - seed.r(e, 35)))::numeric, 3)
    FROM generate_series($2::bigint, $3::bigint) AS e
    CROSS JOIN LATERAL (SELECT seed.r(e, 31) < 0.03 AS o,
                               $4::timestamptz - $6 * seed.r(e, 36) * interval '1 day' AS at) AS x"""
# A share $3 of the orders (× 85% sent), each attributed to a delivery drawn from the $2
# seeded ones ($4 the run's moment, $5 profiles, $6 days, as above).
SEED_ATTRIBUTIONS = f"""
    INSERT INTO attributions (workspace_id, order_id, profile_id, at, day, revenue, delivery_id, sent_at, journey_id,
                              journey_version, node_id, variant, channel, template_id)
    SELECT o.workspace_id, o.id, o.profile_id, o.at, o.day, o.revenue, m.delivery_id,
           o.at - seed.r(o.n, 41) * interval '3 days', m.journey_id, m.version, m.node_id, m.variant, m.channel,
           m.template_id
    FROM (SELECT f.*, row_number() OVER () AS n FROM facts AS f WHERE f.workspace_id = $1 AND f.kind = 'order') AS o
    CROSS JOIN LATERAL ({DELIVERY.format(d="1 + floor($2 * seed.r(o.n, 42))::bigint")}) AS m
    WHERE m.outcome = 'sent' AND seed.r(o.n, 43) < $3"""
# What one unit of each generator makes, on average: facts per delivery, per run.
FACTS_PER_DELIVERY, FACTS_PER_RUN = 2.39, 6.4
SHARE_OF_MESSAGES, SHARE_OF_RUNS = 0.45, 0.20
SEED_CHUNK = 1_000_000  # facts per statement
ATTRIBUTED = 0.47       # of the orders drawn for an attribution; 85% of those draw a sent delivery


async def seed_query_facts(url: str, workspace_id: str, total: int) -> tuple[int, float]:
    """About 45% message facts (deliveries), 20% journey-run facts, then tracked events and
    orders up to exactly `total`, and attributions for about 40% of the orders; with the
    indexes of `facts` and `attributions` dropped meanwhile and built again at the end, then
    VACUUM ANALYZE. Returns the attributions and the seconds it took."""
    conn = await asyncpg.connect(url, server_settings={"TimeZone": "UTC"})
    started = time.perf_counter()
    try:
        await conn.execute(";".join(SEED_FUNCTIONS))
        indexes = await drop_indexes(conn, ["facts", "attributions"])
        base, profiles = datetime.now(timezone.utc), max(1_000, total // 20)
        deliveries = round(total * SHARE_OF_MESSAGES / FACTS_PER_DELIVERY)
        runs = round(total * SHARE_OF_RUNS / FACTS_PER_RUN)
        made = 0

        async def generate(statement: str, first: int, last: int, per_unit: float) -> int:
            nonlocal made
            step = max(1, round(SEED_CHUNK / per_unit))
            for start in range(first, last + 1, step):
                done = await conn.execute(statement, workspace_id, start, min(last, start + step - 1), base,
                                          profiles, SEED_DAYS)
                made += int(done.rpartition(" ")[2])
                status(f"  {made:,} facts ({time.perf_counter() - started:.0f} s)")
            return made

        await generate(SEED_MESSAGES, 1, deliveries, FACTS_PER_DELIVERY)
        await generate(SEED_RUNS, 1, runs, FACTS_PER_RUN)
        if made < total:
            await generate(SEED_EVENTS, 1, total - made, 1)
        if made != total:  # the last events statement cut short would have said so; this is a guard
            raise RuntimeError(f"seeded {made:,} facts instead of {total:,}")
        attributed = int((await conn.execute(SEED_ATTRIBUTIONS, workspace_id, deliveries, ATTRIBUTED, base, profiles,
                                             SEED_DAYS)).rpartition(" ")[2])
        status(f"  {attributed:,} attributions; building the indexes ({time.perf_counter() - started:.0f} s)")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for statement in indexes:
            await conn.execute(statement)
        await conn.execute("DROP SCHEMA seed CASCADE")
    finally:
        await conn.close()
    status(f"  VACUUM ANALYZE ({time.perf_counter() - started:.0f} s)")
    await admin_execute(url, "VACUUM (ANALYZE) facts", "VACUUM (ANALYZE) attributions")
    return attributed, time.perf_counter() - started


async def drop_indexes(conn, tables: list[str]) -> list[str]:
    """Drops the tables' indexes and primary keys; returns the statements that make them again."""
    keys = await conn.fetch("SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS definition "
                            "FROM pg_constraint WHERE contype = 'p' AND conrelid::regclass::text = ANY($1)", tables)
    indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                               "AND tablename = ANY($1) AND indexname <> ALL($2)", tables, [k["conname"] for k in keys])
    for k in keys:
        await conn.execute(f'ALTER TABLE {k["t"]} DROP CONSTRAINT "{k["conname"]}"')
    for i in indexes:
        await conn.execute(f'DROP INDEX "{i["indexname"]}"')
    return ([f'ALTER TABLE {k["t"]} ADD CONSTRAINT "{k["conname"]}" {k["definition"]}' for k in keys]
            + [i["indexdef"] for i in indexes])


# The service's three aggregates, written by hand: counts by node and variant of the
# journey's message facts, suppressions by reason, and attributed orders.
BARE_COUNTS = """
    SELECT node_id, variant,
           count(*) FILTER (WHERE kind = 'sent') AS sent, count(*) FILTER (WHERE kind = 'delivered') AS delivered,
           count(*) FILTER (WHERE kind = 'failed') AS failed, count(*) FILTER (WHERE kind = 'suppressed') AS suppressed,
           count(*) FILTER (WHERE kind = 'deferred') AS deferred,
           count(DISTINCT delivery_id) FILTER (WHERE kind = 'opened' AND NOT machine) AS opened,
           count(DISTINCT delivery_id) FILTER (WHERE kind = 'opened' AND machine) AS machine_opened,
           count(DISTINCT delivery_id) FILTER (WHERE kind = 'impression' AND NOT machine) AS impressions,
           count(DISTINCT delivery_id) FILTER (WHERE kind = 'clicked' AND NOT machine) AS clicked,
           count(*) FILTER (WHERE kind = 'clicked') AS clicks,
           count(*) FILTER (WHERE kind = 'unsubscribed') AS unsubscribed
    FROM facts WHERE workspace_id = $1 AND journey_id = $2 AND delivery_id <> '' GROUP BY node_id, variant"""
BARE_SUPPRESSED = ("SELECT node_id, variant, reason, count(*) FROM facts "
                   "WHERE workspace_id = $1 AND journey_id = $2 AND kind = 'suppressed' GROUP BY 1, 2, 3")
BARE_CONVERTED = ("SELECT node_id, variant, count(*), coalesce(sum(revenue), 0) FROM attributions "
                  "WHERE workspace_id = $1 AND journey_id = $2 GROUP BY 1, 2")


async def bare_stats(conn, workspace_id: str, journey_id: str) -> dict:
    """The same numbers as MetricsService.stats, by (node, variant)."""
    rows: dict[tuple, dict] = {}

    def row(key) -> dict:
        return rows.setdefault(key, {**{c: 0 for c in COUNTERS}, "suppressed_by_reason": {}, "converted": 0,
                                     "revenue": 0.0})

    for r in await conn.fetch(BARE_COUNTS, workspace_id, journey_id):
        row((r["node_id"], r["variant"])).update({c: r[c] for c in COUNTERS})
    for node, variant, reason, n in await conn.fetch(BARE_SUPPRESSED, workspace_id, journey_id):
        row((node, variant))["suppressed_by_reason"][reason or "unknown"] = n
    for node, variant, n, revenue in await conn.fetch(BARE_CONVERTED, workspace_id, journey_id):
        row((node, variant)).update(converted=n, revenue=float(revenue))
    return rows


def comparable(reply: metrics_pb2.StatsReply) -> dict:
    """GetStats' rows as bare_stats shapes them."""
    return {(r.group["node"], r.group["variant"]): {
        **{c: getattr(r.counts, c) for c in COUNTERS}, "suppressed_by_reason": dict(r.counts.suppressed_by_reason),
        "converted": r.counts.converted, "revenue": r.counts.revenue} for r in reply.rows}


@dataclass
class Latency:
    name: str
    ms: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Query:
    facts: int
    journey_facts: int
    attributions: int
    groups: int
    seed_seconds: float
    rows: list[Latency]


async def bench_query(args, procs: Processes, url: str, keys: RedisUndo, run_id: str) -> Query:
    workspace_id = f"bench-{run_id}-stats"
    status(f"seeding {args.query_facts:,} facts (INSERT … SELECT over generate_series, indexes built after)")
    attributions, seed_seconds = await seed_query_facts(url, workspace_id, args.query_facts)
    group = f"bench-metrics-{run_id}-query"
    for stream in STREAMS:  # at the end: the process reads nothing of before
        await keys.create_group(stream, group)
    address = procs.service("metrics-query", "services.metrics", metrics_env(args, url, group))
    await harness.wait_grpc(address, procs, "metrics-query")

    conn = await asyncpg.connect(url)
    channel = harness.channel(address)
    stub = metrics_pb2_grpc.MetricsServiceStub(channel)
    request = metrics_pb2.StatsRequest(context=common_pb2.RequestContext(workspace_id=workspace_id),
                                       filter=metrics_pb2.Filter(journey_id=TARGET), group_by=GROUP_BY)
    try:
        journey_facts = await conn.fetchval("SELECT count(*) FROM facts WHERE workspace_id = $1 AND journey_id = $2",
                                            workspace_id, TARGET)
        calls = {
            "GetStats over gRPC": lambda: stub.GetStats(request, timeout=120),
            "asyncpg, the same SQL by hand": lambda: bare_stats(conn, workspace_id, TARGET),
        }
        found = {name: await call() for name, call in calls.items()}
        service_rows, bare_rows = comparable(found["GetStats over gRPC"]), found["asyncpg, the same SQL by hand"]
        if service_rows != bare_rows:
            raise RuntimeError(f"the service and the hand-written SQL disagree:\n{service_rows}\n{bare_rows}")
        status(f"{TARGET}: {journey_facts:,} facts, {len(bare_rows)} rows by node and variant; "
               f"{QUERY_WARMUP} warm-up and {args.query_runs} timed runs of each, in turn")
        rows = {name: Latency(name) for name in calls}
        names = list(calls)
        for n in range(QUERY_WARMUP + args.query_runs):
            for name in names[n % len(names):] + names[:n % len(names)]:  # each goes first as often
                began = time.perf_counter()
                await calls[name]()
                if n >= QUERY_WARMUP:
                    rows[name].ms.append((time.perf_counter() - began) * 1000)
    finally:
        await channel.close()
        await conn.close()
    return Query(args.query_facts, journey_facts, attributions, len(bare_rows), seed_seconds,
                 list(rows.values()))


# -- the run -------------------------------------------------------------------------------
async def run(args) -> None:
    ingest = query = None
    async with harness.Run(args, "bench.metrics") as bench:
        rng, run_id, procs, redis, keys = random.Random(args.seed), bench.id, bench.procs, bench.redis, bench.undo
        workspace_id = f"bench-{run_id}"
        keys.workspaces.update({workspace_id.encode(), f"{workspace_id}-stats".encode()})
        url = await bench.database("metrics")
        server = await harness.server_note(args.database_url, redis)
        group = f"bench-metrics-{run_id}"
        for stream in STREAMS:  # the migrating process's group: the run's, at the end of the streams
            await keys.create_group(stream, group)
        await harness.migrate(procs, "services.metrics", url, args.redis_url, NUDGE_CONSUMER_GROUP=group)
        await read_fact_columns(url)
        if "ingest" in args.only:
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
            ingest = Ingest(nudge, bare, len(entries), args.ingest_facts, startup, logged)
        if "query" in args.only:
            query = await bench_query(args, procs, url, keys, run_id)
        status("removing the run's stream entries and consumer groups")
    print_table(args, server, ingest, query)


def print_table(args, server: str, ingest: Ingest | None, query: Query | None) -> None:
    print(f"\n{os.cpu_count()} CPUs, {server}")
    if ingest:
        nudge, bare = ingest.nudge, ingest.bare
        print(f"\n1. {ingest.facts:,} facts from {ingest.entries:,} stream entries on {len(STREAMS)} streams, "
              f"consumer batch {args.batch:,}")
        harness.table(34, [("facts/s", 10), ("seconds", 9), ("CPU µs", 8), ("PG µs", 7), ("Nudge ÷ this", 14)], [
            (r.name, [f"{r.rate:,.0f}", f"{r.seconds:.1f}", f"{r.cpu.own / ingest.facts * 1e6:,.0f}",
                      f"{r.cpu.postgres / ingest.facts * 1e6:,.0f}",
                      "" if r is nudge else harness.share(nudge.rate, r.rate)]) for r in (nudge, bare)])
        print(f"metrics process start → first transaction: {ingest.startup:.1f} s (not counted)")
        for line in ingest.logged:
            print(f"the metrics processes logged {line}")
        if nudge.wrong:
            print("facts the service stored unlike fact_of's row: "
                  + ", ".join(f"{key} {n:,}" for key, n in sorted(nudge.wrong.items())))
        print(f"aim ≥ {AIM_FACTS_PER_SECOND:,} facts/s: {harness.verdict(nudge.rate >= AIM_FACTS_PER_SECOND)}")
    if query:
        bare = query.rows[-1]
        print(f"\n2. stats of journey {TARGET} by {' and '.join(GROUP_BY)} ({query.journey_facts:,} of "
              f"{query.facts:,} facts, {query.attributions:,} attributions; {query.groups} rows), "
              f"{args.query_runs} runs")
        harness.table(34, [("p50 ms", 10), ("p95 ms", 10), ("max ms", 10), ("÷ bare p50", 12), ("÷ bare p95", 12)], [
            (r.name, [f"{r.percentile(50):,.1f}", f"{r.percentile(95):,.1f}", f"{max(r.ms):,.1f}",
                      *(("", "") if r is bare else (f"{r.percentile(50) / bare.percentile(50):.2f}×",
                                                    f"{r.percentile(95) / bare.percentile(95):.2f}×"))])
            for r in query.rows])
        print(f"seeding took {query.seed_seconds:.0f} s")
        within = {r.name: r.percentile(50) <= AIM_STATS_RATIO * bare.percentile(50)
                  and r.percentile(95) <= AIM_STATS_RATIO * bare.percentile(95) for r in query.rows[:-1]}
        print(f"aim stats within {AIM_STATS_RATIO:g}× the bare SQL (p50 and p95): {harness.verdict(all(within.values()))}")


def main() -> None:
    parser = harness.parser("bench.metrics", __doc__)
    parser.add_argument("--ingest-facts", type=int, default=200_000,
                        help="facts of the ingest run (the streams carry a few more entries that make none)")
    parser.add_argument("--processes", type=int, default=1, help="metrics processes (and bare loops) of the ingest run")
    parser.add_argument("--batch", type=int, default=CONSUMER_BATCH,
                        help="entries read per stream at once (NUDGE_CONSUMER_BATCH)")
    parser.add_argument("--query-facts", type=int, default=10_000_000, help="facts seeded for the stats query")
    parser.add_argument("--query-runs", type=int, default=20, help="timed runs of each stats query")
    parser.add_argument("--only", nargs="+", choices=["ingest", "query"], default=["ingest", "query"],
                        help="run only these measurements")
    args = parser.parse_args()
    if min(args.ingest_facts, args.processes, args.batch, args.query_facts, args.query_runs) < 1:
        parser.error("sizes must be positive")
    harness.run_bench("bench.metrics", run(args), "processes stopped and database dropped")


if __name__ == "__main__":
    main()
