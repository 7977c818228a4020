"""A service that cannot be reached is a 503 with the error shape, never a 500; readiness is
the gateway's own database and Redis, and a down service shows on /healthz/services."""

import asyncio

import grpc
import httpx
import pytest

from nudge.profile.v1 import profile_pb2_grpc
from tests.support.gateway import own_gateway
from tests.support.processes import free_port


async def test_profile_service_down_is_503_on_its_routes_but_the_gateway_stays_ready(gateway_settings, workspace):
    settings = gateway_settings.model_copy(update={"profile_addr": f"127.0.0.1:{free_port()}",
                                                   "rpc_timeout_seconds": 2.0})
    async with own_gateway(settings) as client:
        r = await client.post("/v1/track", json={"userId": "u", "event": "E"}, auth=(workspace.write_key, ""))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "unavailable"
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"ready": True, "checks": {"database": "ok", "redis": "ok"}}
        downstream = await client.get("/healthz/services")
        assert downstream.status_code == 503
        services = downstream.json()["services"]
        assert services.pop("profile") == "UNAVAILABLE"
        assert services == {"segment": "ok", "dispatch": "ok", "journey": "ok", "metrics": "ok"}


class _SilentProfile(profile_pb2_grpc.ProfileServiceServicer):
    """Takes the call and never answers, as a service stuck on a lock would."""

    async def GetProfile(self, request, context):
        await asyncio.Event().wait()


async def test_a_service_that_never_answers_is_a_503_at_the_gateways_deadline(gateway_settings, workspace):
    server = grpc.aio.server()
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(_SilentProfile(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    settings = gateway_settings.model_copy(update={"profile_addr": f"127.0.0.1:{port}", "rpc_timeout_seconds": 0.5})
    async with own_gateway(settings) as client:
        try:
            # Without the deadline the request would hang until the client's own 30 s timeout.
            r = await client.get("/v1/profiles/someone", headers={"Authorization": f"Bearer {workspace.admin_key}"})
        finally:
            await server.stop(None)  # ends a call still held, so the gateway can drain and stop
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"


async def test_every_service_up_is_healthy_on_healthz_services(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        r = await client.get("/healthz/services")
    assert r.status_code == 200, r.text
    assert r.json() == {"healthy": True, "services": {name: "ok" for name in
                                                      ("profile", "segment", "dispatch", "journey", "metrics")}}


@pytest.mark.parametrize("dependency", ["redis", "database"])
async def test_gateway_without_its_own_redis_or_database_is_not_ready(gateway_settings, dependency):
    unreachable = {"redis": {"redis_url": f"redis://127.0.0.1:{free_port()}/0"},
                   "database": {"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/gateway"}}
    async with own_gateway(gateway_settings.model_copy(update=unreachable[dependency])) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks.pop(dependency) != "ok" and set(checks.values()) == {"ok"}, ready.text
