"""A gateway of a test's own, with settings the session's gateway does not have."""

from contextlib import asynccontextmanager

import httpx

from gateway.app import create_app
from tests.support.processes import free_port
from tests.support.servers import served


@asynccontextmanager
async def own_gateway(settings):
    """The gateway with these settings, served by uvicorn on a free port; yields an HTTP client."""
    settings = settings.model_copy(update={"http_port": free_port()})
    async with served(create_app(settings, setup_observability=False), settings.http_port, lifespan="on"), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30) as client:
        yield client
