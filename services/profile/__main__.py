"""python -m services.profile: the profile gRPC server and its outbox relay."""

import asyncio
from pathlib import Path

from kit.clock import SystemClock
from kit.outbox import Outbox, OutboxRelay
from kit.runtime import GrpcServer, Runtime, open_runtime, serve_until_signal
from nudge.profile.v1 import profile_pb2, profile_pb2_grpc
from services.profile.grpc_api import ProfileServicer
from services.profile.models import outbox as outbox_table
from services.profile.pii import Pii
from services.profile.service import ProfileService
from services.profile.settings import ProfileSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def _service(runtime: Runtime, settings: ProfileSettings, relay: OutboxRelay) -> ProfileService:
    return ProfileService(runtime.sessions, Outbox(outbox_table, settings.events_partitions), SystemClock(),
                          Pii.of(runtime.sessions, settings), settings.default_phone_region, on_commit=relay.wake,
                          blind_key=settings.blind_key())


def build(runtime: Runtime, settings: ProfileSettings) -> tuple[GrpcServer, OutboxRelay]:
    relay = OutboxRelay(runtime.sessions, outbox_table, runtime.redis)
    service = _service(runtime, settings, relay)

    def add_servicers(server):
        profile_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(service), server)
        return [profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name]

    return GrpcServer(add_servicers), relay


async def main() -> None:
    settings = ProfileSettings()
    runtime = await open_runtime("profile", settings, MIGRATIONS)
    server, relay = build(runtime, settings)
    # warm-up jobs: consent recorded before segments read consent events is announced once;
    # PII stored before it was sealed is sealed
    service = _service(runtime, settings, relay)
    background = [service.announce_held_consent(), service.seal_stored(),
                  *([relay.run()] if settings.outbox_relay else [])]
    await serve_until_signal(runtime, server, settings.grpc_port, background=background)


if __name__ == "__main__":
    asyncio.run(main())
