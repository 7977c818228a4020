"""python -m services.metrics: the metrics gRPC server and its consumer of the delivery,
engagement, journey and event streams."""

import asyncio
import os
import socket
from pathlib import Path

from kit.clock import Clock, SystemClock
from kit.consumer import StreamConsumer
from kit.runtime import GrpcServer, Runtime, open_runtime, serve_until_signal
from kit.payloads import DELIVERIES, ENGAGEMENT, EVENTS, JOURNEYS
from kit.streams import family_streams
from nudge.metrics.v1 import metrics_pb2, metrics_pb2_grpc
from services.metrics.grpc_api import MetricsServicer
from services.metrics.models import processed
from services.metrics.service import MetricsService
from services.metrics.settings import MetricsSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# Delivery outcomes (dispatch), engagement (dispatch, through the gateway), journey runs.
FACT_FAMILIES = (DELIVERIES, ENGAGEMENT, JOURNEYS, EVENTS)


def build(runtime: Runtime, settings: MetricsSettings, clock: Clock | None = None):
    service = MetricsService(runtime.sessions, clock or SystemClock())
    streams = [s for family in FACT_FAMILIES for s in family_streams(family, settings.events_partitions)]
    consumer = StreamConsumer(runtime.redis, runtime.sessions, processed, streams, settings.consumer_group,
                              f"{socket.gethostname()}-{os.getpid()}", batch_handler=service.handle,
                              batch_size=settings.consumer_batch, reclaim_idle_ms=settings.consumer_reclaim_idle_ms)

    def add_servicers(server):
        metrics_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsServicer(service), server)
        return [metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name]

    return GrpcServer(add_servicers), service, consumer, [consumer.run()]


async def main() -> None:
    settings = MetricsSettings()
    runtime = await open_runtime("metrics", settings, MIGRATIONS)
    server, _, _, loops = build(runtime, settings)
    await serve_until_signal(runtime, server, settings.grpc_port, background=loops)


if __name__ == "__main__":
    asyncio.run(main())
