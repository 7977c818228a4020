"""Stream markers: what a stream announced for an id, and a safe point for a negative assert.

A negative assert ("nothing happened") is only meaningful once the service has processed
everything that could have caused it. Rather than sleeping, a test publishes (or finds) an
entry after the event and waits until the consumer group has delivered past that entry and
acknowledged it: whatever the event could cause has happened by then."""

import orjson

from kit.payloads import DELIVERIES, SEGMENTS
from kit.streams import StreamEvent
from tests.support.waiting import eventually


def _id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def events_about(redis, stream: str, workspace_id: str, key: str, value: str) -> list[StreamEvent]:
    """The events of a workspace on `stream` whose payload has `key` == `value`, in order."""
    found = []
    for _, fields in await redis.xrange(stream):
        if fields.get(b"workspace_id", b"").decode() != workspace_id:
            continue
        event = StreamEvent.from_fields(fields)
        if event.payload.get(key) == value:
            found.append(event)
    return found


async def announced(redis, stream: str, workspace_id: str, key: str, value: str, types: list[str],
                    timeout: float = 30.0) -> list[StreamEvent]:
    """The events about one id (payload `key` == `value`) once exactly `types` are on `stream`
    (an outbox relay publishes shortly after the commit)."""
    async def all_there():
        found = await events_about(redis, stream, workspace_id, key, value)
        return found if [e.type for e in found] == types else None
    try:
        return await eventually(all_there, timeout=timeout)
    except AssertionError:
        found = await events_about(redis, stream, workspace_id, key, value)
        raise AssertionError(f"expected {types} for {value}, got {[e.type for e in found]}") from None


async def delivery_events(redis, workspace_id: str, delivery_id: str, types: list[str]) -> list[StreamEvent]:
    """The events about one delivery on nudge.deliveries.v1, once they are all published."""
    return await announced(redis, DELIVERIES, workspace_id, "delivery_id", delivery_id, types)


async def segment_events(redis, ws, profile_id: str) -> list[dict]:
    """The entered / exited events of one profile on nudge.segments.v1, in order."""
    found = []
    for _, fields in await redis.xrange(SEGMENTS):
        if fields[b"workspace_id"].decode() == ws.id and fields[b"profile_id"].decode() == profile_id:
            found.append({"type": fields[b"type"].decode(), **orjson.loads(fields[b"payload"])})
    return found


async def trail(redis, ws, profile_id: str, count: int) -> list[dict]:
    """The profile's `count` segment events once they are published, and no more."""
    async def enough():
        found = await segment_events(redis, ws, profile_id)
        return found if len(found) >= count else None
    found = await eventually(enough)
    assert len(found) == count, found  # nothing emitted twice
    return found


async def last_entry(redis, stream: str, match) -> bytes | None:
    """The id of the last entry on `stream` whose fields satisfy `match(fields)`."""
    found = [entry_id for entry_id, fields in await redis.xrange(stream) if match(fields)]
    return found[-1] if found else None


async def consumed_past(redis, stream: str, group: str, entry_id: bytes | str, timeout: float = 30.0) -> None:
    """Until `group` has been delivered `entry_id` (or later entries) and acknowledged all it was
    delivered: what the entries up to it could cause has happened."""
    async def acknowledged():
        info = next((g for g in await redis.xinfo_groups(stream) if g["name"].decode() == group), None)
        return (info is not None and _id(info["last-delivered-id"]) >= _id(entry_id)
                and info["pending"] == 0)
    await eventually(acknowledged, timeout=timeout)


async def consumed_by_all(redis, stream: str, entry_id: bytes | str, timeout: float = 30.0) -> None:
    """Until every consumer group on `stream` has consumed past `entry_id`."""
    for info in await redis.xinfo_groups(stream):
        await consumed_past(redis, stream, info["name"].decode(), entry_id, timeout)


async def consumed(redis, group: str, ws, event: str, count: int) -> None:
    """Once `count` `event` calls of the workspace are on nudge.events.v1, until `group` has
    read and acknowledged them: what they could cause has happened (the marker a negative
    assert waits for)."""
    from kit.payloads import EVENTS
    last = await workspace_events(redis, EVENTS, ws.id, event, count)
    await consumed_past(redis, EVENTS, group, last)


async def workspace_events(redis, stream: str, workspace_id: str, event: str, count: int) -> bytes:
    """The id of the `count`-th `event` call of the workspace on `stream`, once it is there."""
    async def published():
        found = [entry_id for entry_id, fields in await redis.xrange(stream)
                 if fields[b"workspace_id"].decode() == workspace_id
                 and orjson.loads(fields[b"payload"]).get("event") == event]
        return found[-1] if len(found) >= count else None
    return await eventually(published)
