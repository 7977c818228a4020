"""python -m bench.segments: the segment service's evaluation throughput, its added latency
from a stored event to the membership change it causes, and its backfill time, each next
to a baseline measured in the same run.

1. events/s evaluated with 100 active segments of mixed kinds, against a bare Redis consumer
   (XREADGROUP + XACK of the same entries) and a bare asyncpg INSERT of the same rows;
2. event stored → segment.entered published, p50/p99 at a paced rate, against a bare Redis
   hop (XADD → XREADGROUP → XADD);
3. the backfill of a new segment over N profiles, against the hand-written SQL count.

The segment service runs as a subprocess (`python -m services.segment`) on a fresh database
of the local PostgreSQL, driven through its gRPC API and the events stream; the backfill
runs in another one on another fresh database.
Everything the run creates (databases, Redis keys, stream entries and consumer groups) is
removed at the end, and only that: other runs may share the Redis database.
"""

import argparse
import asyncio
import contextlib
import math
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
from redis.asyncio import Redis

from bench import harness
from bench.harness import SEGMENTS, Processes, RedisUndo, entry_tuple, xadd_all
from kit.redis import connect
from kit.streams import EVENTS, StreamEvent
from nudge.common.v1 import common_pb2
from nudge.segment.v1 import segment_pb2, segment_pb2_grpc

AIM_EVENTS_PER_SECOND, AIM_BACKFILL_RATIO = 10_000, 3.0
PRODUCTS = [f"p-{n}" for n in range(50)]
CATEGORIES = ["shoes", "bags", "hats", "shirts"]
COUNTRIES = ["KR", "JP", "US", "DE", "FR"]
PROBE_EVENT = "Coupon Redeemed"
CONTEXT = {"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "ko-KR",
           "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}
BACKFILL_RULE = {"event": "Order Completed", "count": {"op": "gte", "value": 1}, "within": "P30D"}
BACKFILL_SQL = ("SELECT count(*) FROM (SELECT profile_id FROM events WHERE workspace_id = $1 "
                "AND name = 'Order Completed' AND at > now() - interval '30 days' GROUP BY profile_id) t")
EVENT_COLUMNS = ["workspace_id", "id", "profile_id", "name", "at", "properties"]
PROFILE_COLUMNS = ["workspace_id", "profile_id", "traits", "last_seen", "series"]


status = harness.reporter("bench.segments")


# -- workload ----------------------------------------------------------------------
def segment_rules(count: int, probes: int) -> list[tuple[str, dict]]:
    """`count` segments of mixed kinds, in creation order. `{"segment": "@k"}` names the
    k-th segment of the list (created before); the last `probes` are the latency probes:
    `PROBE_EVENT` at least 1, 2, … times in a day."""
    kinds = [
        lambda i: {"event": "Product Viewed", "where": [{"property": "product_id", "op": "eq",
                                                         "value": PRODUCTS[i % 50]}],
                   "count": {"op": "gte", "value": 1 + i % 3}, "within": f"P{1 + i % 7}D"},
        lambda i: {"event": "Product Added", "where": [{"property": "category", "op": "eq",
                                                        "value": CATEGORIES[i % 4]}],
                   "count": {"op": "gte", "value": 1 + i % 2}, "within": f"P{3 + i % 10}D"},
        lambda i: {"event": "Order Completed", "absent": True, "within": f"P{14 + i % 60}D"},
        lambda i: {"event": "Order Completed", "sum": "revenue", "op": "gte",
                   "value": 50_000 * (1 + i % 6), "within": f"P{30 + i % 60}D"},
        lambda i: {"event": "Order Completed", "avg": "revenue", "op": "gte", "value": 40_000 + 1000 * (i % 30),
                   "within": "P90D"},
        lambda i: {"event": ["Order Completed", "Product Added", "Product Viewed"][i % 3],
                   ["first", "last"][i % 2]: {"op": ["within", "before", "after"][i % 3], "ago": f"P{1 + i % 14}D"}},
        lambda i: {"last_seen": {"op": ["more_than", "less_than"][i % 2], "ago": f"P{1 + i % 10}D"}},
        lambda i: [{"trait": "plan", "op": "eq", "value": ["pro", "free"][i % 2]},
                   {"trait": "country", "op": "in", "value": COUNTRIES[i % 5:i % 5 + 2]},
                   {"trait": "birthday", "op": "anniversary_within", "days": 7 + i % 20},
                   {"trait": "signup_at", "op": "before", "ago": f"P{30 * (1 + i % 12)}D"}][i % 4],
        lambda i: {"any": [{"event": "Product Viewed", "where": [{"property": "category", "op": "eq",
                                                                  "value": CATEGORIES[i % 4]}],
                            "count": {"op": "gte", "value": 3}, "within": "P7D"},
                           {"event": "Product Added", "where": [{"property": "price", "op": "gte",
                                                                 "value": 100 + i % 50}],
                            "count": {"op": "gte", "value": 1}, "within": "P14D"}]},
        lambda i: {"all": [{"trait": "plan", "op": "eq", "value": "pro"},
                           {"event": "Order Completed", "count": {"op": "gte", "value": 1 + i % 3},
                            "within": f"P{30 + i % 30}D"},
                           {"last_seen": {"op": "less_than", "ago": "P3D"}}]},
        # (no `in` / `not_in` property filter: its list value makes the series key unhashable,
        # and the workspace's catalog, so every evaluation in it, fails)
        lambda i: {"not": {"event": "Product Viewed", "where": [{"property": "category", "op": "eq",
                                                                 "value": CATEGORIES[i % 4]},
                                                                {"property": "price", "op": "gte", "value": 150}],
                           "count": {"op": "gte", "value": 1}, "within": "P30D"}},
        lambda i: {"all": [{"event": "Product Added", "count": {"op": "gte", "value": 1}, "within": "P2D"},
                           {"not": {"event": "Order Completed", "count": {"op": "gte", "value": 1},
                                    "within": "P2D"}}]},
    ]
    plain = count - probes - 6
    if plain < 12:
        raise ValueError(f"--segments must be at least {probes + 18} with {probes} probe segments")
    found = [(f"kind{i % len(kinds)}-{i}", kinds[i % len(kinds)](i)) for i in range(plain)]
    found += [("rfm champions", {"rfm": "champions"}),
              ("rfm recent", {"rfm": {"score": "r", "op": "gte", "value": 4}}),
              ("ref pro viewers", {"all": [{"segment": "@0"}, {"trait": "plan", "op": "eq", "value": "pro"}]}),
              ("ref either", {"any": [{"segment": "@1"}, {"segment": "@3"}]}),
              ("ref champions lapsing", {"all": [{"segment": f"@{plain}"},
                                                 {"last_seen": {"op": "more_than", "ago": "P2D"}}]}),
              ("ref of ref", {"not": {"segment": f"@{plain + 2}"}})]
    found += [(f"probe {k}", {"event": PROBE_EVENT, "count": {"op": "gte", "value": k}, "within": "P1D"})
              for k in range(1, probes + 1)]
    return found


def resolve_refs(tree, ids: list[str]):
    if isinstance(tree, dict):
        if isinstance(tree.get("segment"), str) and tree["segment"].startswith("@"):
            return {"segment": ids[int(tree["segment"][1:])]}
        return {k: resolve_refs(v, ids) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve_refs(v, ids) for v in tree]
    return tree


def properties(name: str, rng: random.Random) -> dict:
    props = {"product_id": rng.choice(PRODUCTS), "category": rng.choice(CATEGORIES),
             "price": round(rng.uniform(1, 200), 2), "currency": "KRW"}
    if name == "Order Completed":
        props["revenue"] = rng.randrange(5_000, 200_000, 100)
    return props


def some_traits(rng: random.Random) -> dict:
    return {"plan": rng.choice(["free", "pro"]), "country": rng.choice(COUNTRIES),
            "birthday": f"{rng.randrange(1960, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"}


def history_workload(workspace_id: str, profile_ids: list[str], per_profile: int,
                     rng: random.Random) -> list[StreamEvent]:
    """What the profiles did before the runs, as the stream delivered it (in time order):
    their traits 60 days ago, then `per_profile` events each over the last 60 days."""
    now = datetime.now(timezone.utc)
    found = []
    for profile_id in profile_ids:
        traits = {**some_traits(rng), "signup_at": (now - timedelta(days=rng.uniform(60, 720))).isoformat()}
        found.append(StreamEvent(uuid.uuid4(), "profile.traits_changed", workspace_id, profile_id,
                                 now - timedelta(days=60), {"traits": traits}))
        for _ in range(per_profile):
            name = rng.choices(["Product Viewed", "Product Added", "Order Completed"], [6, 3, 1])[0]
            found.append(stream_event(workspace_id, profile_id, name, properties(name, rng),
                                      now - timedelta(seconds=rng.uniform(60, 60 * 86400))))
    return sorted(found, key=lambda e: e.occurred_at)


def stream_event(workspace_id: str, profile_id: str, name: str, props: dict, at: datetime) -> StreamEvent:
    """A track event as the profile service publishes it on nudge.events.v1."""
    event_id = str(uuid.uuid4())
    return StreamEvent(uuid.uuid4(), "event.track", workspace_id, profile_id, at, {
        "event_id": event_id, "type": "track", "messageId": f"bench-{event_id}", "userId": f"u-{profile_id[:8]}",
        "event": name, "properties": props, "context": CONTEXT, "receivedAt": at.isoformat(),
        "timestamp": at.isoformat()})


def stream_workload(workspace_id: str, profile_ids: list[str], count: int, rng: random.Random) -> list[StreamEvent]:
    """Mostly product views, adds and orders; 5% trait changes."""
    now = datetime.now(timezone.utc)
    found = []
    for i in range(count):
        profile_id, at = rng.choice(profile_ids), now + timedelta(milliseconds=i)
        if rng.random() < 0.05:
            found.append(StreamEvent(uuid.uuid4(), "profile.traits_changed", workspace_id, profile_id, at,
                                     {"traits": dict([rng.choice(list(some_traits(rng).items()))])}))
            continue
        name = rng.choices(["Product Viewed", "Product Added", "Order Completed"], [6, 3, 1])[0]
        found.append(stream_event(workspace_id, profile_id, name, properties(name, rng), at))
    return found


def probe_workload(workspace_id: str, profile_ids: list[str], count: int, rng: random.Random) -> list[StreamEvent]:
    """Probe i goes to profile i mod P: its n-th probe enters it in segment `probe n`."""
    now = datetime.now(timezone.utc)
    return [stream_event(workspace_id, profile_ids[i % len(profile_ids)], PROBE_EVENT,
                         {"code": f"C-{i}", "revenue": rng.randrange(1000, 9000)}, now) for i in range(count)]


# -- measurements --------------------------------------------------------------------
@dataclass
class Row:
    name: str
    rate: float | None = None       # per second
    seconds: float | None = None
    latencies: list[float] = field(default_factory=list)  # ms

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def entry_ms(entry_id) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


async def group_caught_up(redis: Redis, stream: str, group: str, last_id: bytes) -> bool:
    for info in await redis.xinfo_groups(stream):
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == group:
            delivered = info["last-delivered-id"]
            delivered = delivered.decode() if isinstance(delivered, bytes) else delivered
            return info["pending"] == 0 and entry_tuple(delivered) >= entry_tuple(last_id)
    raise RuntimeError(f"consumer group {group} is gone from {stream}")


async def wait_consumed(redis: Redis, stream: str, group: str, last_id: bytes, procs: Processes, name: str,
                        timeout: float, poll: float = 0.01) -> float:
    """Polls the group until it has read and acked everything up to last_id; returns when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while not await group_caught_up(redis, stream, group, last_id):
        procs.check(name)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{group} has not consumed {stream} after {timeout:.0f}s:\n{procs.log(name)}")
        await asyncio.sleep(poll)
    return time.perf_counter()


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


async def paced_latencies(redis: Redis, in_stream: str, out_stream: str, probes: list[StreamEvent],
                          rate: float, match, timeout: float = 60) -> tuple[list[float], int]:
    """XADDs the probes to in_stream at `rate`/s while reading out_stream; latency = ms of
    the out entry id − ms of the in entry id, matched by the probe's event_id. Returns the
    latencies (ms) and the number of probes never matched."""
    sent: dict[str, int] = {}
    arrived: dict[str, int] = {}
    wanted = {p.payload["event_id"] for p in probes}
    start = (await redis.xrevrange(out_stream, count=1) or [(b"0-0", None)])[0][0]
    finished = asyncio.Event()

    async def read() -> None:
        cursor = start
        while not finished.is_set() or len(arrived) < len(wanted):
            reply = await redis.xread({out_stream: cursor}, count=1000, block=200)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    cursor = entry_id
                    key = match(fields)
                    if key in wanted and key not in arrived:
                        arrived[key] = entry_ms(entry_id)

    reader = asyncio.create_task(read())
    encoded = [p.to_fields() for p in probes]
    try:
        began = time.perf_counter()
        for i, (probe, fields) in enumerate(zip(probes, encoded, strict=True)):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[probe.payload["event_id"]] = entry_ms(await redis.xadd(in_stream, fields))
        finished.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), timeout)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return [arrived[k] - sent[k] for k in arrived], len(wanted) - len(arrived)


def segment_trigger(probe_segments: set[str]):
    def match(fields: dict) -> str | None:
        if fields.get(b"type") != b"segment.entered":
            return None
        payload = orjson.loads(fields[b"payload"])
        if payload["segment_id"] not in probe_segments:
            return None
        return payload.get("trigger", {}).get("event_id")
    return match


def hop_match(fields: dict) -> str | None:
    return orjson.loads(fields[b"payload"]).get("event_id") if b"payload" in fields else None


# -- setup ---------------------------------------------------------------------------
async def count_entries(redis: Redis, stream: str, after: bytes, workspace_id: str) -> int:
    found, workspace = 0, workspace_id.encode()
    while entries := await redis.xrange(stream, min=b"(" + after, count=2000):
        after = entries[-1][0]
        found += sum(fields.get(b"workspace_id") == workspace for _, fields in entries)
    return found


count = harness.fetchval


class Segments:
    """The segment service's gRPC API, as this run's workspace."""

    def __init__(self, address: str, workspace_id: str) -> None:
        self.channel = harness.channel(address)
        self.stub = segment_pb2_grpc.SegmentServiceStub(self.channel)
        self.context = common_pb2.RequestContext(workspace_id=workspace_id, actor="bench")

    async def create(self, name: str, rules: dict) -> segment_pb2.Segment:
        return await self.stub.CreateSegment(segment_pb2.CreateSegmentRequest(
            context=self.context, name=name, rules_json=orjson.dumps(rules).decode()), timeout=60)

    async def get(self, segment_id: str) -> segment_pb2.Segment:
        return await self.stub.GetSegment(segment_pb2.GetSegmentRequest(context=self.context, id=segment_id),
                                          timeout=60)

    async def refresh_rfm(self) -> None:
        """Setting the RFM settings (to the defaults) refreshes the workspace's RFM edges at once."""
        await self.stub.SetRfmSettings(segment_pb2.SetRfmSettingsRequest(
            context=self.context, settings=segment_pb2.RfmSettings(order_event="Order Completed",
                                                                   revenue_property="revenue")), timeout=300)

    async def close(self) -> None:
        await self.channel.close()


# -- the three measurements ----------------------------------------------------------
@dataclass
class Throughput:
    nudge: Row
    baselines: list[Row]
    changes: int


@dataclass
class Latency:
    nudge: Row
    hop: Row


@dataclass
class Backfill:
    nudge: Row
    sql: Row
    members: int
    slowest_batch: float


async def start_segment_service(args, procs: Processes, keys: RedisUndo, name: str, url: str, group: str,
                                **env: str) -> str:
    """`python -m services.segment` reading the events stream in a consumer group of its own,
    created at the end of the stream (it reads nothing from before the run); it migrates
    its database at start. Returns its gRPC address once it serves."""
    await keys.create_group(EVENTS, group)
    address = procs.service(name, "services.segment", {
        "NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": args.redis_url, "NUDGE_CONSUMER_GROUP": group,
        "NUDGE_CONSUMER_BATCH": str(args.batch), **env})
    await harness.wait_grpc(address, procs, name)
    return address


async def feed(redis: Redis, procs: Processes, group: str, events: list[StreamEvent]) -> float:
    """XADDs the entries and waits until the service has consumed them; returns the seconds."""
    started = time.perf_counter()
    last = await xadd_all(redis, EVENTS, [e.to_fields() for e in events])
    return await wait_consumed(redis, EVENTS, group, last, procs, "segment", timeout=900) - started


async def wait_backfills(api: Segments, ids: list[str], procs: Processes, timeout: float = 300) -> None:
    async def done() -> bool:
        return all([(await api.get(i)).backfill.state == "done" for i in ids])
    await harness.until(done, procs, "the backfills did not finish", timeout, poll=0.2)


async def wait_outbox_empty(url: str, procs: Processes, timeout: float = 300) -> None:
    # The service's outbox table, read: the relay has published every membership change.
    async def empty() -> bool:
        return not await count(url, "SELECT count(*) FROM outbox")
    await harness.until(empty, procs, "the outbox relay did not empty the outbox", timeout)


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
    stored = await count(url, "SELECT count(*) FROM events WHERE workspace_id = $1 AND id = ANY($2::uuid[])",
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


async def bench_latency(args, procs: Processes, redis: Redis, keys: RedisUndo, run_id: str,
                        probe_segments: set[str], probes: list[StreamEvent], hop_probes: list[StreamEvent]) -> Latency:
    latencies, missing = await paced_latencies(redis, EVENTS, SEGMENTS, probes, args.rate,
                                               segment_trigger(probe_segments))
    if missing:
        raise RuntimeError(f"{missing} of {len(probes)} probe events caused no segment.entered within 60 s")
    if procs.running["segment"].poll() is not None:
        raise RuntimeError(f"the segment service exited:\n{procs.log('segment')}")
    nudge = Row("Nudge segment service", latencies=latencies)

    status("bare Redis hop")
    hop_in, hop_out, hop_group = f"bench.hop.in.{run_id}", f"bench.hop.out.{run_id}", f"bench-hop-{run_id}"
    await keys.create_group(hop_in, hop_group)
    procs.start("hop", ["-m", "bench.segments", "--serve-hop", hop_in, hop_out, hop_group,
                        "--redis-url", args.redis_url, "--batch", str(args.batch)], {})
    try:
        warm, _ = await paced_latencies(redis, hop_in, hop_out, hop_probes[:20], 100, hop_match, timeout=30)
        if len(warm) < 20:
            raise RuntimeError(f"the bare hop did not answer:\n{procs.log('hop')}")
        latencies, missing = await paced_latencies(redis, hop_in, hop_out, hop_probes[20:], args.rate, hop_match)
        if missing:
            raise RuntimeError(f"the bare hop lost {missing} entries:\n{procs.log('hop')}")
    finally:
        procs.stop("hop")
    return Latency(nudge, Row("bare Redis hop", latencies=latencies))


async def bench_backfill(args, procs: Processes, keys: RedisUndo, url: str, rng: random.Random,
                         run_id: str) -> Backfill:
    workspace_id = f"bench-{run_id}"
    address = await start_segment_service(args, procs, keys, "backfill", url, f"bench-backfill-{run_id}",
                                          NUDGE_BACKFILL_BATCH=str(args.backfill_batch))
    now = datetime.now(timezone.utc)
    # Set-based seeding into the service's (migrated) tables: a million profiles through the
    # stream would take the service hours; the backfill only reads profiles and events.
    status(f"loading {args.profiles:,} profiles and their orders (COPY)")
    started, chunk, loaded = time.perf_counter(), 50_000, 0
    conn = await asyncpg.connect(url)
    try:
        for start in range(0, args.profiles, chunk):
            profiles, events = [], []
            for n in range(start, min(args.profiles, start + chunk)):
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
            await conn.copy_records_to_table("profiles", records=profiles, columns=PROFILE_COLUMNS)
            await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
            loaded += len(profiles)
            if loaded % 200_000 == 0 or loaded == args.profiles:
                status(f"  {loaded:,} profiles loaded ({time.perf_counter() - started:.0f} s)")
        await conn.execute("ANALYZE")
        status("hand-written SQL count (3 runs, median)")
        times, expected = [], None
        for _ in range(3):
            began = time.perf_counter()
            expected = await conn.fetchval(BACKFILL_SQL, workspace_id)
            times.append(time.perf_counter() - began)
    finally:
        await conn.close()
    sql_seconds = statistics.median(times)

    status(f"backfill of a new segment over {args.profiles:,} profiles, batches of {args.backfill_batch:,}")
    api = Segments(address, workspace_id)
    try:
        segment = await api.create("ordered in 30 days", BACKFILL_RULE)
        # The service backfills in its own loop; its progress (`done`) moves a batch at a
        # time, so the slowest batch is the longest wait between two moves (polled at 20 ms).
        moved, shown, done, slowest = time.perf_counter(), time.perf_counter(), 0, 0.0
        while (found := (await api.get(segment.id)).backfill).state != "done":
            procs.check("backfill")
            if found.done != done:
                slowest, moved, done = max(slowest, time.perf_counter() - moved), time.perf_counter(), found.done
            if time.perf_counter() - shown > 15:
                shown = time.perf_counter()
                status(f"  {done:,} of {args.profiles:,} profiles")
            await asyncio.sleep(0.02)
        slowest = max(slowest, time.perf_counter() - moved)
        seconds = (found.finished_at.ToDatetime() - found.started_at.ToDatetime()).total_seconds()
        members = (await api.stub.CountMembers(segment_pb2.CountMembersRequest(
            context=api.context, id=segment.id), timeout=60)).count
    finally:
        await api.close()
    procs.stop("backfill")
    if members != expected:
        raise RuntimeError(f"the backfill found {members:,} members, the SQL {expected:,}")
    return Backfill(Row("Nudge backfill", rate=args.profiles / seconds, seconds=seconds),
                    Row("hand-written SQL count", rate=args.profiles / sql_seconds, seconds=sql_seconds),
                    members, slowest)


# -- the run -------------------------------------------------------------------------
async def run(args) -> None:
    parts = set(args.only)
    throughput = latency = backfill = None
    async with harness.Run(args, "bench.segments") as bench:
        rng, run_id, procs, redis, keys = random.Random(args.seed), bench.id, bench.procs, bench.redis, bench.undo
        workspace_id = f"bench-{run_id}"
        keys.workspaces.add(workspace_id.encode())
        keys.patterns.append(f"nudge:segment:{workspace_id}:*")  # its membership sets
        server = await harness.server_note(args.database_url, redis)
        if parts & {"throughput", "latency"}:
            url = await bench.database("segment")
            profile_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.users)]
            probes_needed = math.ceil(args.rate * args.seconds / args.users)
            group = f"bench-segments-{run_id}"
            address = await start_segment_service(args, procs, keys, "segment", url, group)
            api = Segments(address, workspace_id)
            try:
                status(f"creating {args.segments} segments")
                ids: list[str] = []
                for name, tree in segment_rules(args.segments, probes_needed):
                    ids.append((await api.create(name, resolve_refs(tree, ids))).id)
                await wait_backfills(api, ids, procs)  # nobody yet: nothing to do
                history = history_workload(workspace_id, profile_ids, args.history, rng)
                status(f"history: {len(history):,} entries ({args.users:,} profiles' traits and "
                       f"{args.history} events each over 60 days) through the service")
                seconds = await feed(redis, procs, group, history)
                status(f"  consumed in {seconds:.1f} s ({len(history) / seconds:,.0f}/s); "
                       "refreshing the RFM edges and backfilling the RFM segments")
                await api.refresh_rfm()
                await wait_backfills(api, ids, procs)
            finally:
                await api.close()
            status(f"warming up with {args.warmup:,} events")
            await feed(redis, procs, group, stream_workload(workspace_id, profile_ids, args.warmup, rng))
            await wait_outbox_empty(url, procs)
            await harness.admin_execute(url, "ANALYZE")  # the statistics autovacuum would have gathered by now
            if "throughput" in parts:
                status(f"throughput: {args.events:,} events")
                throughput = await bench_throughput(args, procs, url, redis, group, workspace_id,
                                                    stream_workload(workspace_id, profile_ids, args.events, rng))
            if "latency" in parts:
                total = round(args.rate * args.seconds)
                status(f"latency: {total:,} events at {args.rate:,.0f}/s")
                latency = await bench_latency(
                    args, procs, redis, keys, run_id, set(ids[-probes_needed:]),
                    probe_workload(workspace_id, profile_ids, total, rng),
                    probe_workload(workspace_id, profile_ids, total + 20, rng))
            log = procs.log("segment", lines=10).strip()
            if log:
                status(f"the segment service logged (WARNING and above):\n{log}")
            procs.stop("segment")
        if "backfill" in parts:
            backfill = await bench_backfill(args, procs, keys, await bench.database("backfill"), rng, run_id)
    print_table(args, server, throughput, latency, backfill)


def print_table(args, server: str, throughput: Throughput | None, latency: Latency | None,
                backfill: Backfill | None) -> None:
    print(f"\n{os.cpu_count()} CPUs, {server}")
    if throughput or latency:
        print(f"{args.segments} segments of mixed kinds, {args.users:,} profiles, consumer batch {args.batch}")
    if throughput:
        nudge = throughput.nudge
        print(f"\n1. {args.events:,} events evaluated ({throughput.changes:,} membership changes)")
        harness.table(34, [("events/s", 10), ("seconds", 9), ("Nudge ÷ this", 14)], [
            (r.name, [f"{r.rate:,.0f}", f"{r.seconds:.2f}", "" if r is nudge else harness.share(nudge.rate, r.rate)])
            for r in [nudge, *throughput.baselines]])
        print(f"aim ≥ {AIM_EVENTS_PER_SECOND:,} events/s with {args.segments} segments: "
              f"{harness.verdict(nudge.rate >= AIM_EVENTS_PER_SECOND)}")
    if latency:
        nudge, hop = latency.nudge, latency.hop
        print(f"\n2. event stored → segment.entered published, {args.rate:,.0f} events/s for {args.seconds:g} s")
        harness.table(34, [("p50 ms", 10), ("p99 ms", 9), ("max ms", 9), ("Nudge − this", 14)], [
            (r.name, [f"{r.percentile(50):.0f}", f"{r.percentile(99):.0f}", f"{max(r.latencies):.0f}",
                      "" if r is nudge else f"+{nudge.percentile(99) - r.percentile(99):.0f} ms p99"])
            for r in (nudge, hop)])
        print(f"added p99: {nudge.percentile(99) - hop.percentile(99):.0f} ms")
    if backfill:
        nudge, sql = backfill.nudge, backfill.sql
        print(f"\n3. backfill of a new segment over {args.profiles:,} profiles "
              f"({backfill.members:,} members, batches of {args.backfill_batch:,})")
        harness.table(34, [("seconds", 10), ("profiles/s", 11), ("Nudge ÷ this", 14)], [
            (r.name, [f"{r.seconds:.3f}", f"{r.rate:,.0f}", "" if r is nudge else f"{nudge.seconds / r.seconds:,.1f}×"])
            for r in (nudge, sql)])
        print(f"slowest backfill batch: {backfill.slowest_batch:.1f} s")
        print(f"aim ≤ {AIM_BACKFILL_RATIO:g}× the SQL: "
              f"{harness.verdict(nudge.seconds <= AIM_BACKFILL_RATIO * sql.seconds)}")


# -- the bare hop, run in its own process ----------------------------------------------
async def serve_hop(redis_url: str, in_stream: str, out_stream: str, group: str, batch: int) -> None:
    """XREADGROUP from in_stream, XADD each entry to out_stream, XACK: a consumer doing
    nothing but the Redis hops the segment service also makes."""
    redis = connect(redis_url)
    try:
        while True:
            reply = await redis.xreadgroup(group, "hop", {in_stream: ">"}, count=batch, block=1000)
            for _, entries in reply or []:
                async with redis.pipeline(transaction=False) as pipe:
                    for entry_id, fields in entries:
                        pipe.xadd(out_stream, {**fields, b"source": entry_id})
                    await pipe.execute()
                await redis.xack(in_stream, group, *[entry_id for entry_id, _ in entries])
    finally:
        await redis.aclose()


def main() -> None:
    parser = harness.parser("bench.segments", __doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events in the throughput run")
    parser.add_argument("--warmup", type=int, default=2_000, help="events consumed before measuring")
    parser.add_argument("--users", type=int, default=2_000, help="profiles of the throughput and latency runs")
    parser.add_argument("--history", type=int, default=5,
                        help="events per profile delivered through the service before the runs")
    parser.add_argument("--segments", type=int, default=100, help="active segments")
    parser.add_argument("--batch", type=int, default=500, help="consumer batch (NUDGE_CONSUMER_BATCH)")
    parser.add_argument("--rate", type=float, default=500, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=10, help="length of the latency run")
    parser.add_argument("--profiles", type=int, default=1_000_000, help="profiles of the backfill run")
    parser.add_argument("--backfill-batch", type=int, default=5_000, help="profiles per backfill batch")
    parser.add_argument("--only", nargs="+", choices=["throughput", "latency", "backfill"],
                        default=["throughput", "latency", "backfill"], help="run only these measurements")
    parser.add_argument("--serve-hop", nargs=3, metavar=("IN", "OUT", "GROUP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hop:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_hop(args.redis_url, *args.serve_hop, args.batch))
        return
    if min(args.events, args.users, args.history, args.batch, args.profiles, args.backfill_batch) < 1 \
            or args.warmup < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("sizes must be positive")
    try:
        segment_rules(args.segments, math.ceil(args.rate * args.seconds / args.users))
    except ValueError as err:
        parser.error(str(err))
    harness.run_bench("bench.segments", run(args), "processes stopped and databases dropped")


if __name__ == "__main__":
    main()
