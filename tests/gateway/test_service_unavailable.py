"""A service that cannot be reached is a 503 with the error shape, never a 500."""

import asyncio

import httpx
import uvicorn

from gateway.app import create_app
from tests.conftest import free_port


async def test_profile_service_down_is_503_and_readyz_says_why(gateway_settings, workspace):
    settings = gateway_settings.model_copy(update={"profile_addr": f"127.0.0.1:{free_port()}",
                                                   "http_port": free_port(), "rpc_timeout_seconds": 2.0})
    server = uvicorn.Server(uvicorn.Config(create_app(settings, setup_observability=False), host="127.0.0.1",
                                           port=settings.http_port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30) as client:
            r = await client.post("/v1/track", json={"userId": "u", "event": "E"}, auth=(workspace.write_key, ""))
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "unavailable"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["profile"] != "ok" and ready.json()["checks"]["database"] == "ok"
    finally:
        server.should_exit = True
        await task
