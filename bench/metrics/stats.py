"""2. a journey's stats by node and variant over the seeded facts: GetStats over gRPC,
against the same three aggregates written by hand and run by asyncpg."""

import time

import asyncpg

from bench import harness
from bench.harness import Processes, RedisUndo
from bench.metrics.report import Latency, Query
from bench.metrics.seed import seed_query_facts
from bench.metrics.streams import STREAMS, metrics_env
from bench.metrics.workload import GROUP_BY, TARGET
from nudge.common.v1 import common_pb2
from nudge.metrics.v1 import metrics_pb2, metrics_pb2_grpc

# Stats counters by delivery (GetStats' Counts), as the hand-written SQL names them.
COUNTERS = ("sent", "delivered", "failed", "suppressed", "deferred", "opened", "machine_opened", "impressions",
            "clicked", "clicks", "unsubscribed")
QUERY_WARMUP = 2
status = harness.reporter("bench.metrics")

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
    metrics = metrics_pb2_grpc.MetricsServiceStub(channel)
    request = metrics_pb2.StatsRequest(context=common_pb2.RequestContext(workspace_id=workspace_id),
                                       filter=metrics_pb2.Filter(journey_id=TARGET), group_by=GROUP_BY)
    try:
        journey_facts = await conn.fetchval("SELECT count(*) FROM facts WHERE workspace_id = $1 AND journey_id = $2",
                                            workspace_id, TARGET)
        calls = {
            "GetStats over gRPC": lambda: metrics.GetStats(request, timeout=120),
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
