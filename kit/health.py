"""Health checks an HTTP process answers with: its own dependencies (readiness) and the
gRPC services it calls (downstream health: for dashboards and alerts, never a probe, so one
slow service does not take every replica of its callers out of rotation)."""

import asyncio

import grpc
from grpc_health.v1 import health_pb2
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

OK = "ok"


async def _timed(check, timeout: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout)
        return OK
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except Exception as err:  # noqa: BLE001 - any failure means not ready; the reason is shown
        return repr(err)


async def dependencies(engine: AsyncEngine, redis: Redis, timeout: float = 2.0) -> dict[str, str]:
    """"ok" or why not, for the process's own database and Redis."""
    async def database() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks = await asyncio.gather(_timed(database, timeout), _timed(redis.ping, timeout))
    return {"database": checks[0], "redis": checks[1]}


async def services(stubs: dict, timeout: float = 2.0) -> dict[str, str]:
    """"ok", "not serving" or the gRPC status, for each `grpc.health.v1` stub by name, asked at once."""
    async def one(stub) -> str:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            return err.code().name
        return OK if reply.status == health_pb2.HealthCheckResponse.SERVING else "not serving"

    answers = await asyncio.gather(*(one(stub) for stub in stubs.values()))
    return dict(zip(stubs, answers))
