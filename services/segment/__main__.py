"""python -m services.segment: the segment gRPC server, its stream consumer, timers,
backfills, RFM refresh and outbox relay."""

import asyncio
import os
import socket
from pathlib import Path

from kit.clock import Clock, SystemClock
from kit.consumer import StreamConsumer
from kit.outbox import Outbox, OutboxRelay
from kit.runtime import GrpcServer, Runtime, open_runtime, serve_until_signal
from kit.payloads import EVENTS
from kit.streams import family_streams
from nudge.segment.v1 import segment_pb2, segment_pb2_grpc
from services.segment.clients import JourneyUsages
from services.segment.grpc_api import SegmentServicer
from services.segment.models import outbox as outbox_table
from services.segment.models import processed
from services.segment.service import SegmentService
from services.segment.settings import SegmentSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime, settings: SegmentSettings, clock: Clock | None = None):
    """The server, the service, and the background loops that keep memberships current."""
    relay = OutboxRelay(runtime.sessions, outbox_table, runtime.redis)
    service = SegmentService(runtime.sessions, runtime.redis, Outbox(outbox_table, settings.events_partitions),
                             clock or SystemClock(), JourneyUsages(settings.journey_addr, "service:segment"), on_commit=relay.wake,
                             timer_batch=settings.timer_batch, backfill_batch=settings.backfill_batch)
    consumer = StreamConsumer(runtime.redis, runtime.sessions, processed,
                              family_streams(EVENTS, settings.events_partitions), settings.consumer_group,
                              f"{socket.gethostname()}-{os.getpid()}", batch_handler=service.handle,
                              batch_size=settings.consumer_batch,
                              reclaim_idle_ms=settings.consumer_reclaim_idle_ms)

    def add_servicers(server):
        segment_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(service), server)
        return [segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name]

    loops = [consumer.run(), service.run_timers(settings.timer_poll_seconds), service.run_backfills(), service.run_rfm_refresh(),
             service.run_cache_reconcile()]
    if settings.outbox_relay:
        loops.append(relay.run())
    return GrpcServer(add_servicers), service, consumer, relay, loops


async def main() -> None:
    settings = SegmentSettings()
    runtime = await open_runtime("segment", settings, MIGRATIONS)
    server, service, _, _, loops = build(runtime, settings)
    try:
        await serve_until_signal(runtime, server, settings.grpc_port, background=loops)
    finally:
        await service.journeys.close()


if __name__ == "__main__":
    asyncio.run(main())
