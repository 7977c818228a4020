"""The FastAPI application: wiring of routers, error shape, tracing, and its lifespan
(gateway database for keys, Redis for rate limits, gRPC channels to the services)."""

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from gateway import (audit, cors, dispatch, engagement, errors, inbox, journeys, metrics, profiles, sdk_access,
                     segments, tracking)
from gateway.ratelimit import RateLimitHeaders, RateLimits
from gateway.rpc import Channels
from gateway.sdk_settings import SdkSettingsStore
from gateway.settings import GatewaySettings
from gateway.workspaces import open_store
from kit import health
from kit.logs import get_logger, setup_logging
from kit.redis import connect, resolve_redis_url
from kit.tracing import instrument_engine, setup_tracing

log = get_logger(__name__)

ROUTERS = (tracking, profiles, segments, dispatch, inbox, engagement, journeys, metrics, sdk_access, audit)


def create_app(settings: GatewaySettings | None = None, setup_observability: bool = True) -> FastAPI:
    settings = settings or GatewaySettings()
    if setup_observability:
        setup_logging("gateway", settings.log_level)
        setup_tracing("gateway", settings.otlp_endpoint)
    app = FastAPI(title="Nudge API", version="1.0",
                  description="Tracking (Segment spec, write key; also on the short paths /v1/i|t|p|s|g|a|b "
                              "the browser and mobile SDKs post to) and management (admin key) of Nudge. The in-app "
                              "inbox and in-app engagement need the write key and the person's user token "
                              "(`X-Nudge-User-Token`: hex HMAC-SHA256 of the userId under the workspace's identity "
                              "secret). Tracking and inbox answers carry CORS headers for the workspace's allowed "
                              "origins only.",
                  lifespan=_lifespan(settings))
    errors.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    _add_health_routes(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(cors.WorkspaceCors)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    return app


def _lifespan(settings: GatewaySettings):
    """Opens what the requests use (app.state) before serving, and closes it after."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store, engine = await open_store(settings)
        instrument_engine(engine)
        redis = connect(await resolve_redis_url(settings))
        channels = Channels(settings)
        app.state.settings = settings
        app.state.workspaces = store
        app.state.sdk_settings = SdkSettingsStore(store.sessions)
        app.state.engine = engine
        app.state.redis = redis
        app.state.rate_limits = RateLimits(redis, settings.rate_limit_write, settings.rate_limit_admin)
        app.state.services = channels.services
        app.state.service_health = channels.health
        try:
            yield
        finally:
            await channels.close()
            await redis.aclose()
            await engine.dispose()
            # uvicorn has finished the requests in flight (its graceful shutdown) before this.
            log.info("drained", exit_code=0)

    return lifespan


def _add_health_routes(app: FastAPI) -> None:
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
