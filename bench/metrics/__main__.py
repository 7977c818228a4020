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

import random

from bench import harness
from bench.metrics.facts import read_fact_columns
from bench.metrics.ingest import run_ingest
from bench.metrics.report import print_table
from bench.metrics.stats import bench_query
from bench.metrics.streams import CONSUMER_BATCH, STREAMS

status = harness.reporter("bench.metrics")


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
            ingest = await run_ingest(args, bench, url, group, workspace_id, rng)
        if "query" in args.only:
            query = await bench_query(args, procs, url, keys, run_id)
        status("removing the run's stream entries and consumer groups")
    print_table(args, server, ingest, query)


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
