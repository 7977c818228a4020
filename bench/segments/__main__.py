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
import random
import uuid

from redis.asyncio import Redis

from bench import harness
from bench.harness import Processes
from bench.segments.backfill import bench_backfill
from bench.segments.latency import bench_latency, serve_hop
from bench.segments.report import Latency, Throughput, print_table
from bench.segments.service import Segments, feed, start_segment_service, wait_backfills, wait_outbox_empty
from bench.segments.throughput import bench_throughput
from bench.segments.workload import history_workload, probe_workload, resolve_refs, segment_rules, stream_workload

status = harness.reporter("bench.segments")


async def run(args) -> None:
    parts = set(args.only)
    throughput = latency = backfill = None
    async with harness.Run(args, "bench.segments") as bench:
        rng, workspace_id = random.Random(args.seed), f"bench-{bench.id}"
        bench.undo.workspaces.add(workspace_id.encode())
        bench.undo.patterns.append(f"nudge:segment:{workspace_id}:*")  # its membership sets
        server = await harness.server_note(args.database_url, bench.redis)
        if parts & {"throughput", "latency"}:
            throughput, latency = await bench_live(args, bench, workspace_id, rng, parts)
        if "backfill" in parts:
            backfill = await bench_backfill(args, bench.procs, bench.undo, await bench.database("backfill"), rng,
                                            bench.id)
    print_table(args, server, throughput, latency, backfill)


async def bench_live(args, bench: harness.Run, workspace_id: str, rng: random.Random,
                     parts: set[str]) -> tuple[Throughput | None, Latency | None]:
    """Measurements 1 and 2, on one segment service holding the run's segments and the
    profiles' history, warmed up."""
    procs, redis = bench.procs, bench.redis
    url = await bench.database("segment")
    profile_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.users)]
    probes_needed = math.ceil(args.rate * args.seconds / args.users)
    group = f"bench-segments-{bench.id}"
    address = await start_segment_service(args, procs, bench.undo, "segment", url, group)
    ids = await prepare(args, procs, redis, Segments(address, workspace_id), group, profile_ids, probes_needed, rng)
    status(f"warming up with {args.warmup:,} events")
    await feed(redis, procs, group, stream_workload(workspace_id, profile_ids, args.warmup, rng))
    await wait_outbox_empty(url, procs)
    await harness.admin_execute(url, "ANALYZE")  # the statistics autovacuum would have gathered by now
    throughput = latency = None
    if "throughput" in parts:
        status(f"throughput: {args.events:,} events")
        throughput = await bench_throughput(args, procs, url, redis, group, workspace_id,
                                            stream_workload(workspace_id, profile_ids, args.events, rng))
    if "latency" in parts:
        total = round(args.rate * args.seconds)
        status(f"latency: {total:,} events at {args.rate:,.0f}/s")
        latency = await bench_latency(
            args, procs, redis, bench.undo, bench.id, set(ids[-probes_needed:]),
            probe_workload(workspace_id, profile_ids, total, rng),
            probe_workload(workspace_id, profile_ids, total + 20, rng))
    log = procs.log("segment", lines=10).strip()
    if log:
        status(f"the segment service logged (WARNING and above):\n{log}")
    procs.stop("segment")
    return throughput, latency


async def prepare(args, procs: Processes, redis: Redis, api: Segments, group: str, profile_ids: list[str],
                  probes_needed: int, rng: random.Random) -> list[str]:
    """Creates the segments, feeds the profiles' history through the service and backfills
    the RFM segments; returns the segments' ids in creation order (the probes last)."""
    workspace_id = api.context.workspace_id
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
    return ids


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
