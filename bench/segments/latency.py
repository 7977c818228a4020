"""2. event stored → segment.entered published, p50/p99 at a paced rate, against a bare Redis
hop (XADD → XREADGROUP → XADD) served by `python -m bench.segments --serve-hop`."""

import asyncio
import contextlib
import time

import orjson
from redis.asyncio import Redis

from bench import harness
from bench.harness import Processes, RedisUndo, entry_tuple
from bench.segments.report import Latency, Row
from kit.redis import connect
from kit.payloads import EVENTS, SEGMENTS
from kit.streams import StreamEvent

status = harness.reporter("bench.segments")


def entry_ms(entry_id) -> int:
    return entry_tuple(entry_id)[0]


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
