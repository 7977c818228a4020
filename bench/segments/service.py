"""The segment service under test: its process, its gRPC API as the run's workspace, feeding
it the events stream and waiting until it has consumed what it was fed."""

import asyncio
import time

import orjson
from redis.asyncio import Redis

from bench import harness
from bench.harness import Processes, RedisUndo, entry_tuple, fetchval, xadd_all
from kit.payloads import EVENTS
from kit.streams import StreamEvent
from nudge.common.v1 import common_pb2
from nudge.segment.v1 import segment_pb2, segment_pb2_grpc


class Segments:
    """The segment service's gRPC API, as this run's workspace."""

    def __init__(self, address: str, workspace_id: str) -> None:
        self.channel = harness.channel(address)
        self.segments = segment_pb2_grpc.SegmentServiceStub(self.channel)
        self.context = common_pb2.RequestContext(workspace_id=workspace_id, actor="bench")

    async def create(self, name: str, rules: dict) -> segment_pb2.Segment:
        return await self.segments.CreateSegment(segment_pb2.CreateSegmentRequest(
            context=self.context, name=name, rules_json=orjson.dumps(rules).decode()), timeout=60)

    async def get(self, segment_id: str) -> segment_pb2.Segment:
        return await self.segments.GetSegment(segment_pb2.GetSegmentRequest(context=self.context, id=segment_id),
                                          timeout=60)

    async def refresh_rfm(self) -> None:
        """Setting the RFM settings (to the defaults) refreshes the workspace's RFM edges at once."""
        await self.segments.SetRfmSettings(segment_pb2.SetRfmSettingsRequest(
            context=self.context, settings=segment_pb2.RfmSettings(order_event="Order Completed",
                                                                   revenue_property="revenue")), timeout=300)

    async def close(self) -> None:
        await self.channel.close()


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
        return not await fetchval(url, "SELECT count(*) FROM outbox")
    await harness.until(empty, procs, "the outbox relay did not empty the outbox", timeout)


async def count_entries(redis: Redis, stream: str, after: bytes, workspace_id: str) -> int:
    found, workspace = 0, workspace_id.encode()
    while entries := await redis.xrange(stream, min=b"(" + after, count=2000):
        after = entries[-1][0]
        found += sum(fields.get(b"workspace_id") == workspace for _, fields in entries)
    return found
