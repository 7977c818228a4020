"""The FastAPI application: wiring of routers, error shape, tracing, and its lifespan
(gateway database for keys, Redis for rate limits, gRPC channels to the services)."""

from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2_grpc
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from gateway import dispatch, engagement, errors, journeys, metrics, profiles, segments, tracking
from gateway.settings import GatewaySettings
from gateway.workspaces import open_store
from kit import health
from kit.logs import get_logger, setup_logging
from kit.redis import connect, resolve_redis_url
from kit.runtime import MESSAGE_SIZE_OPTIONS
from kit.tracing import instrument_engine, setup_tracing
from nudge.dispatch.v1 import dispatch_pb2_grpc
from nudge.journey.v1 import journey_pb2_grpc
from nudge.metrics.v1 import metrics_pb2_grpc
from nudge.profile.v1 import profile_pb2_grpc
from nudge.segment.v1 import segment_pb2_grpc

log = get_logger(__name__)


def create_app(settings: GatewaySettings | None = None, setup_observability: bool = True) -> FastAPI:
    settings = settings or GatewaySettings()
    if setup_observability:
        setup_logging("gateway", settings.log_level)
        setup_tracing("gateway", settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store, engine = await open_store(settings)
        instrument_engine(engine)
        redis = connect(await resolve_redis_url(settings))
        channel = grpc.aio.insecure_channel(settings.profile_addr, options=MESSAGE_SIZE_OPTIONS)
        segment_channel = grpc.aio.insecure_channel(settings.segment_addr, options=MESSAGE_SIZE_OPTIONS)
        dispatch_channel = grpc.aio.insecure_channel(settings.dispatch_addr, options=MESSAGE_SIZE_OPTIONS)
        journey_channel = grpc.aio.insecure_channel(settings.journey_addr, options=MESSAGE_SIZE_OPTIONS)
        metrics_channel = grpc.aio.insecure_channel(settings.metrics_addr, options=MESSAGE_SIZE_OPTIONS)
        app.state.settings = settings
        app.state.workspaces = store
        app.state.engine = engine
        app.state.redis = redis
        app.state.profile = profile_pb2_grpc.ProfileServiceStub(channel)
        app.state.segment = segment_pb2_grpc.SegmentServiceStub(segment_channel)
        app.state.dispatch = dispatch_pb2_grpc.DispatchServiceStub(dispatch_channel)
        app.state.journey = journey_pb2_grpc.JourneyServiceStub(journey_channel)
        app.state.metrics = metrics_pb2_grpc.MetricsServiceStub(metrics_channel)
        app.state.service_health = {"profile": health_pb2_grpc.HealthStub(channel),
                                    "segment": health_pb2_grpc.HealthStub(segment_channel),
                                    "dispatch": health_pb2_grpc.HealthStub(dispatch_channel),
                                    "journey": health_pb2_grpc.HealthStub(journey_channel),
                                    "metrics": health_pb2_grpc.HealthStub(metrics_channel)}
        try:
            yield
        finally:
            await metrics_channel.close()
            await journey_channel.close()
            await dispatch_channel.close()
            await segment_channel.close()
            await channel.close()
            await redis.aclose()
            await engine.dispose()
            # uvicorn has finished the requests in flight (its graceful shutdown) before this.
            log.info("drained", exit_code=0)

    app = FastAPI(title="Nudge API", version="1.0",
                  description="Tracking (Segment spec, write key) and management (admin key) of Nudge.",
                  lifespan=lifespan)
    errors.install(app)
    app.include_router(tracking.router)
    app.include_router(profiles.router)
    app.include_router(segments.router)
    app.include_router(dispatch.router)
    app.include_router(engagement.router)
    app.include_router(journeys.router)
    app.include_router(metrics.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request):
        # Only the gateway's own dependencies: a down service answers 503 on its routes, but
        # must not take every gateway replica out of the load balancer (see /healthz/services).
        checks = await health.dependencies(request.app.state.engine, request.app.state.redis)
        ready = all(v == health.OK for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/healthz/services", include_in_schema=False)
    async def services_health(request: Request):
        """The services the gateway calls, for dashboards, alerts and `make run`; never a probe."""
        checks = await health.services(request.app.state.service_health)
        healthy = all(v == health.OK for v in checks.values())
        return JSONResponse({"healthy": healthy, "services": checks}, status_code=200 if healthy else 503)

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    return app
