"""The rows each measurement fills and the table printed from them."""

import os
from dataclasses import dataclass, field

from bench import harness

AIM_EVENTS_PER_SECOND, AIM_BACKFILL_RATIO = 10_000, 3.0


@dataclass
class Row:
    name: str
    rate: float | None = None       # per second
    seconds: float | None = None
    latencies: list[float] = field(default_factory=list)  # ms

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


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
