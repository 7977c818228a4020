"""Service bootstrap shared by every service: database (migrated), Redis, tracing, logs,
and a grpc.aio server with health, reflection, the error interceptor and a graceful drain."""

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from kit import db, migrations
from kit.errors import DomainErrorInterceptor
from kit.grpc_channels import MESSAGE_SIZE_OPTIONS, add_port
from kit.limits import check_message
from kit.logs import get_logger, setup_logging
from kit.redis import connect, resolve_redis_url
from kit.settings import ServiceSettings
from kit.tracing import instrument_engine, setup_tracing, shutdown_tracing

log = get_logger(__name__)

@dataclass
class Runtime:
    name: str
    settings: ServiceSettings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker
    redis: Redis

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


async def open_runtime(name: str, settings: ServiceSettings, migrations_dir: Path | None,
                       setup_observability: bool = True) -> Runtime:
    if setup_observability:
        setup_logging(name, settings.log_level)
        setup_tracing(name, settings.otlp_endpoint)
    database_url = await db.resolve_database_url(settings, name)
    if migrations_dir is not None and settings.migrate_on_start:
        await migrations.upgrade(database_url, migrations_dir)
    engine = db.create_engine(database_url)
    instrument_engine(engine)
    redis_url = await resolve_redis_url(settings)
    return Runtime(name, settings, database_url, redis_url, engine,
                   db.session_factory(engine), connect(redis_url))


class GrpcServer:
    """A grpc.aio server with grpc.health.v1 and reflection for the given services."""

    def __init__(self, add_servicers: Callable[[aio.Server], Iterable[str]]) -> None:
        # Connections are recycled so clients behind a Kubernetes Service spread over new replicas.
        self.server = aio.server(interceptors=[DomainErrorInterceptor(check_message)], options=[
            ("grpc.max_connection_age_ms", 60_000), ("grpc.max_connection_age_grace_ms", 15_000),
            *MESSAGE_SIZE_OPTIONS])
        self.service_names = list(add_servicers(self.server))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME], self.server)
        self.port = 0

    async def start(self, port: int, host: str = "[::]") -> int:
        self.port = add_port(self.server, f"{host}:{port}")
        await self.server.start()
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float) -> None:
        # Probes see NOT_SERVING first, then in-flight calls get `grace` seconds to finish.
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def serve_until_signal(runtime: Runtime, server: GrpcServer, port: int,
                             background: Iterable[Coroutine] = (), grace: float = 10.0,
                             drain: Callable[[], Coroutine] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain: the background loops stop first (nothing new is
    claimed), then in-flight calls get `grace` seconds while `drain()` finishes the service's own
    work in flight (dispatch: its sends); "drained" is logged last. Keep `grace` below the
    launcher's (the supervisor's 15 s, Kubernetes' 30 s). A crashed background task stops the
    process with code 1; one that returns (a warm-up job) does not."""
    bound = await server.start(port)
    log.info("serving", port=bound, services=server.service_names)
    tasks = [asyncio.create_task(coro) for coro in background]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    running, failed = {stopper, *tasks}, []
    while stopper in running and not failed:  # a task that simply finishes (a warm-up) is fine
        done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stopper and t.exception() is not None]
    for task in failed:
        log.error("background task died", error=repr(task.exception()))
    log.info("draining", grace_seconds=grace)
    # Leaving now: a second stop signal (Ctrl-C reaches the whole group, then the
    # supervisor's SIGTERM) must not cut the drain or the embedded servers' release short.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    for task in [stopper, *tasks]:
        task.cancel()
    if tasks:  # bounded: a loop stuck in a call that ignores cancellation must not hold up the drain
        _, stuck = await asyncio.wait(tasks, timeout=grace)
        for task in stuck:
            log.warning("background task still stopping", task=task.get_coro().__qualname__)
    await asyncio.gather(server.stop(grace), *([drain()] if drain else []))
    await runtime.close()
    shutdown_tracing()
    log.info("drained", exit_code=1 if failed else 0)
    if failed:
        raise SystemExit(1)
