"""python -m services.journey: the journey gRPC server, its stream consumer (events and
segment changes), the timer, date and broadcast loops, and the outbox relay."""

import asyncio
import os
import socket
from datetime import timedelta
from pathlib import Path

from kit.clock import Clock, SystemClock
from kit.consumer import StreamConsumer
from kit.outbox import Outbox, OutboxRelay
from kit.runtime import GrpcServer, Runtime, open_runtime, serve_until_signal
from kit.payloads import EVENTS, SEGMENTS
from kit.streams import family_streams
from nudge.journey.v1 import journey_pb2, journey_pb2_grpc
from services.journey.clients import Platform
from services.journey.grpc_api import JourneyServicer
from services.journey.models import outbox as outbox_table
from services.journey.models import processed
from services.journey.service import JourneyService
from services.journey.settings import JourneySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime, settings: JourneySettings, clock: Clock | None = None):
    """The server, the service, and the background loops that move runs."""
    relay = OutboxRelay(runtime.sessions, outbox_table, runtime.redis)
    platform = Platform(settings.dispatch_addr, settings.segment_addr, settings.profile_addr)
    owner = f"{socket.gethostname()}-{os.getpid()}"
    service = JourneyService(runtime.sessions, Outbox(outbox_table, settings.events_partitions), clock or SystemClock(),
                             platform, owner=owner, timer_batch=settings.timer_batch,
                             lease=timedelta(seconds=settings.timer_lease_seconds),
                             step_concurrency=settings.step_concurrency, on_commit=relay.wake)
    streams = family_streams(EVENTS, settings.events_partitions) + family_streams(SEGMENTS, settings.events_partitions)
    consumer = StreamConsumer(runtime.redis, runtime.sessions, processed, streams, settings.consumer_group, owner,
                              batch_handler=service.handle, batch_size=settings.consumer_batch,
                              reclaim_idle_ms=settings.consumer_reclaim_idle_ms)

    def add_servicers(server):
        journey_pb2_grpc.add_JourneyServiceServicer_to_server(JourneyServicer(service), server)
        return [journey_pb2.DESCRIPTOR.services_by_name["JourneyService"].full_name]

    loops = [consumer.run(), service.run_timers(settings.timer_poll_seconds),
             service.run_scheduled_entries(settings.timer_poll_seconds)]
    if settings.outbox_relay:
        loops.append(relay.run())
    return GrpcServer(add_servicers), service, consumer, relay, platform, loops


async def main() -> None:
    settings = JourneySettings()
    runtime = await open_runtime("journey", settings, MIGRATIONS)
    server, _, _, _, platform, loops = build(runtime, settings)
    try:
        await serve_until_signal(runtime, server, settings.grpc_port, background=loops)
    finally:
        await platform.close()


if __name__ == "__main__":
    asyncio.run(main())
