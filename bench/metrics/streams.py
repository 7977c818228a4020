"""The streams the metrics service reads: the run's entries put on them, a metrics process
started in a consumer group of the run's, and when that group has read them all."""

from redis.asyncio import Redis

from bench.harness import entry_tuple
from kit.payloads import DELIVERIES, ENGAGEMENT, EVENTS, JOURNEYS
from kit.streams import StreamEvent, family_streams

STREAMS = [s for family in (DELIVERIES, ENGAGEMENT, JOURNEYS, EVENTS) for s in family_streams(family, 1)]
CONSUMER_BATCH = 1_000  # the service's default NUDGE_CONSUMER_BATCH


def metrics_env(args, url: str, group: str) -> dict[str, str]:
    """A metrics process's settings: the run's database, Redis and consumer group; it never migrates."""
    return {"NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": args.redis_url, "NUDGE_MIGRATE_ON_START": "false",
            "NUDGE_CONSUMER_GROUP": group, "NUDGE_CONSUMER_BATCH": str(args.batch)}


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
