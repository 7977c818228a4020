"""python -m services.dispatch: the dispatch gRPC server, deferred sends, the erasure
consumer and the outbox relay."""

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
from nudge.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from services.dispatch.clients import JourneyUsages
from services.dispatch.egress import Allowance, EgressClient, EgressGuard
from services.dispatch.grpc_api import DispatchServicer
from services.dispatch.models import outbox as outbox_table
from services.dispatch.models import processed
from services.dispatch.profiles import ACTOR, ProfileDirectory
from services.dispatch.service import DispatchService
from services.dispatch.settings import DispatchSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime, settings: DispatchSettings, clock: Clock | None = None):
    relay = OutboxRelay(runtime.sessions, outbox_table, runtime.redis)
    # Every provider call goes through the egress guard, with the operator's exceptions only.
    http = EgressClient(EgressGuard(Allowance.parse(settings.egress_allow)), timeout=settings.provider_timeout_seconds)
    service = DispatchService(runtime.sessions, runtime.redis, Outbox(outbox_table, settings.events_partitions),
                              clock or SystemClock(), ProfileDirectory(settings.profile_addr), http, settings,
                              journeys=JourneyUsages(settings.journey_addr, ACTOR), on_commit=relay.wake)

    def add_servicers(server):
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(DispatchServicer(service), server)
        return [dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name]

    consumer = StreamConsumer(runtime.redis, runtime.sessions, processed,
                              family_streams(EVENTS, settings.events_partitions), settings.consumer_group,
                              f"{socket.gethostname()}-{os.getpid()}", batch_handler=service.handle,
                              batch_size=settings.consumer_batch, reclaim_idle_ms=settings.consumer_reclaim_idle_ms)
    loops = [service.run_deferred(), consumer.run()]
    if settings.outbox_relay:
        loops.append(relay.run())
    return GrpcServer(add_servicers), service, loops


async def main() -> None:
    settings = DispatchSettings()
    runtime = await open_runtime("dispatch", settings, MIGRATIONS)
    server, service, loops = build(runtime, settings)
    try:
        await serve_until_signal(runtime, server, settings.grpc_port, background=loops,
                                 drain=lambda: service.drain(settings.drain_seconds))
    finally:
        await service.http.aclose()
        await service.profiles.close()
        await service.journeys.close()


if __name__ == "__main__":
    asyncio.run(main())
