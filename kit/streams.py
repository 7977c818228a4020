"""Domain events on Redis Streams: partitions and the entry format shared by the outbox
relay (writer) and stream consumers (readers). What an entry carries is kit.payloads."""

import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import orjson
from redis.exceptions import ResponseError

from kit.logs import get_logger
from kit.payloads import Payload, decode

log = get_logger(__name__)


def stream_name(family: str, profile_id: str, partitions: int) -> str:
    """One profile's entries always land in the same partition of a family."""
    if partitions <= 1:
        return family
    return f"{family}.{zlib.crc32(profile_id.encode()) % partitions}"


def family_streams(family: str, partitions: int) -> list[str]:
    return [family] if partitions <= 1 else [f"{family}.{n}" for n in range(partitions)]


@dataclass(frozen=True)
class StreamEvent:
    id: uuid.UUID
    type: str
    workspace_id: str
    profile_id: str
    occurred_at: datetime
    payload: dict  # the body as published; `data` is the same, typed
    trace_headers: dict[str, str] = field(default_factory=dict)

    @cached_property
    def data(self) -> Payload | None:
        """The payload as its kit.payloads class, or None for a type none declares."""
        return decode(self.type, self.payload)

    def to_text_fields(self) -> dict[str, str]:
        """The stream entry's fields as text (an outbox row keeps them in JSON)."""
        return {"id": str(self.id), "type": self.type, "workspace_id": self.workspace_id,
                "profile_id": self.profile_id, "occurred_at": self.occurred_at.isoformat(),
                "payload": orjson.dumps(self.payload).decode(), **self.trace_headers}

    def to_fields(self) -> dict[str, bytes]:
        return {k: v.encode() for k, v in self.to_text_fields().items()}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> "StreamEvent":
        text = {k.decode(): v for k, v in fields.items()}
        return cls(
            id=uuid.UUID(text["id"].decode()),
            type=text["type"].decode(),
            workspace_id=text["workspace_id"].decode(),
            profile_id=text["profile_id"].decode(),
            occurred_at=datetime.fromisoformat(text["occurred_at"].decode()),
            payload=orjson.loads(text["payload"]),
            trace_headers={k: text[k].decode() for k in ("traceparent", "tracestate") if k in text},
        )


def _entry_id(value) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def trim_consumed(redis, stream: str, hard_cap: int) -> None:
    """Drops what every consumer group has acknowledged, never an entry a group still needs:
    at-least-once must survive a slow consumer. Only past `hard_cap` entries (a consumer
    gone for good, or a stream nobody reads) are the oldest dropped, to protect Redis."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # the stream does not exist yet
        return
    floors = []
    for group in groups:
        pending = await redis.xpending(stream, group["name"])
        if pending["pending"]:
            floors.append(_entry_id(pending["min"]))  # read, not yet acknowledged: kept
        else:
            ms, seq = _entry_id(group["last-delivered-id"])
            floors.append((ms, seq + 1))  # everything up to the last delivery is acknowledged
    if floors:
        ms, seq = min(floors)
        await redis.xtrim(stream, minid=f"{ms}-{seq}", approximate=False)
    length = await redis.xlen(stream)
    if length > hard_cap:
        log.warning("stream over its cap: oldest entries dropped", stream=stream, length=length, cap=hard_cap)
        await redis.xtrim(stream, maxlen=hard_cap, approximate=False)
