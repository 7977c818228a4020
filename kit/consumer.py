"""Stream consumer helper: consumer groups, ack after commit, reclaim of a dead consumer's
pending entries, idempotent by event id.

A handler runs inside the consumer's database transaction together with the insert of
(group, event id) into `processed_events`; an entry seen before commits nothing and is
acked again. Entries are acked only after that commit, so a crash replays them.

A batch handler takes every new entry of one read in one transaction (throughput); when
the batch fails, its entries are retried one by one, so one bad entry holds up no other.
"""

import asyncio
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import Column, DateTime, MetaData, Table, Text, func, text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.logs import get_logger
from kit.streams import StreamEvent
from kit.tracing import context_from_headers

log = get_logger(__name__)
tracer = trace.get_tracer("nudge.consumer")

Handler = Callable[[AsyncSession, StreamEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, list[StreamEvent]], Awaitable[None]]


def processed_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events", metadata,
        Column("consumer_group", Text, primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class StreamConsumer:
    def __init__(self, redis: Redis, sessions: async_sessionmaker, processed: Table,
                 streams: list[str], group: str, consumer: str, handler: Handler | None = None,
                 batch_size: int = 100, block_ms: int = 1000, reclaim_idle_ms: int = 30_000,
                 max_deliveries: int = 10, batch_handler: BatchHandler | None = None) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        self.redis = redis
        self.sessions = sessions
        self.processed = processed
        self.streams = streams
        self.group = group
        self.consumer = consumer
        self.handler = handler or (lambda session, event: batch_handler(session, [event]))
        self.batch_handler = batch_handler
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_deliveries = max_deliveries

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as err:
                if "BUSYGROUP" not in str(err):
                    raise

    async def reclaim_once(self) -> int:
        """Take over entries another consumer read but did not ack within reclaim_idle_ms."""
        handled = 0
        for stream in self.streams:
            await self._dead_letter(stream)
            # Redis 7 adds a third element (deleted ids) to the reply; 6.2 has two.
            reply = await self.redis.xautoclaim(
                stream, self.group, self.consumer, self.reclaim_idle_ms, "0-0", count=self.batch_size)
            handled += await self._process_all(stream, [(i, f) for i, f in reply[1] if f is not None])
        return handled

    async def _dead_letter(self, stream: str) -> None:
        """An entry that failed max_deliveries times moves to `<stream>.dead` (kept for a
        person to look at and replay) instead of blocking the group forever."""
        stuck = await self.redis.xpending_range(stream, self.group, min="-", max="+", count=self.batch_size,
                                                idle=self.reclaim_idle_ms)
        for entry in stuck:
            if entry["times_delivered"] < self.max_deliveries:
                continue
            for entry_id, fields in await self.redis.xrange(stream, entry["message_id"], entry["message_id"]):
                await self.redis.xadd(f"{stream}.dead", {**fields, b"group": self.group.encode(),
                                                         b"source_id": entry_id})
            await self.redis.xack(stream, self.group, entry["message_id"])
            log.error("entry moved to dead letters", stream=stream, group=self.group,
                      entry_id=entry["message_id"].decode(), deliveries=entry["times_delivered"])

    async def read_once(self, block_ms: int | None = None) -> int:
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {s: ">" for s in self.streams},
            count=self.batch_size, block=self.block_ms if block_ms is None else block_ms)
        handled = 0
        for stream, entries in reply or []:
            handled += await self._process_all(stream, entries)
        return handled

    async def run(self) -> None:
        await self.ensure_groups()
        while True:
            try:
                await self.reclaim_once()
                await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream consumer failed; retrying", group=self.group)
                await asyncio.sleep(1)

    async def _process_all(self, stream, entries: list) -> int:
        if self.batch_handler is None or len(entries) < 2:
            return sum([await self._process(stream, entry_id, fields) for entry_id, fields in entries])
        events = [StreamEvent.from_fields(fields) for _, fields in entries]
        with tracer.start_as_current_span(f"consume {len(events)} entries", kind=trace.SpanKind.CONSUMER,
                                          links=[trace.Link(trace.get_current_span(
                                              context_from_headers(e.trace_headers)).get_span_context())
                                                 for e in events[:32] if e.trace_headers]):
            try:
                async with self.sessions() as session, session.begin():
                    # one array parameter, not a VALUES row per entry: the statement is the same
                    # for every batch, so it is not compiled again for each
                    fresh = set((await session.execute(text(
                        f"INSERT INTO {self.processed.name} (consumer_group, event_id) "
                        "SELECT :group, unnest(CAST(:ids AS uuid[])) ON CONFLICT DO NOTHING RETURNING event_id"),
                        {"group": self.group, "ids": [e.id for e in events]})).scalars())
                    first_times = [e for e in events if e.id in fresh]
                    if first_times:
                        await self.batch_handler(session, first_times)
            except Exception:
                log.exception("batch failed; retrying its entries one by one", group=self.group,
                              entries=len(entries))
                return sum([await self._process(stream, entry_id, fields) for entry_id, fields in entries])
        await self.redis.xack(stream, self.group, *[entry_id for entry_id, _ in entries])
        return len(entries)

    async def _process(self, stream, entry_id, fields) -> int:
        """Returns 1 when the entry was handled and acked, 0 when the handler failed."""
        event = StreamEvent.from_fields(fields)
        with tracer.start_as_current_span(f"consume {event.type}",
                                          context=context_from_headers(event.trace_headers),
                                          kind=trace.SpanKind.CONSUMER):
            try:
                async with self.sessions() as session, session.begin():
                    first_time = (await session.execute(
                        insert(self.processed)
                        .values(consumer_group=self.group, event_id=event.id)
                        .on_conflict_do_nothing()
                        .returning(self.processed.c.event_id))).first()
                    if first_time:
                        await self.handler(session, event)
            except Exception:
                # Not acked: this or another consumer retries it after reclaim_idle_ms.
                log.exception("handler failed", group=self.group, event_id=str(event.id))
                return 0
        await self.redis.xack(stream, self.group, entry_id)
        return 1
