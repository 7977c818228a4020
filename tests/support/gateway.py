"""A gateway of a test's own, with settings the session's gateway does not have."""

import asyncio
from contextlib import asynccontextmanager

import httpx
import uvicorn

from gateway.app import create_app
from tests.support.processes import free_port


@asynccontextmanager
async def own_gateway(settings):
    """The gateway with these settings, served by uvicorn on a free port; yields an HTTP client."""
    settings = settings.model_copy(update={"http_port": free_port()})
    server = uvicorn.Server(uvicorn.Config(create_app(settings, setup_observability=False), host="127.0.0.1",
                                           port=settings.http_port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn's own start flag
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task
