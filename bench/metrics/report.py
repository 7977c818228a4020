"""The rows each measurement fills and the table printed from them."""

import math
import os
from dataclasses import dataclass, field

from bench import harness
from bench.harness import Cpu
from bench.metrics.streams import STREAMS
from bench.metrics.workload import GROUP_BY, TARGET

AIM_FACTS_PER_SECOND, AIM_STATS_RATIO = 10_000, 2.0


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
        print(f"aim stats within {AIM_STATS_RATIO:g}× the bare SQL (p50 and p95): "
              f"{harness.verdict(all(within.values()))}")
