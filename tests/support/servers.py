"""ASGI apps served by uvicorn in the test's own event loop: the gateway, the local providers
and the webhook receiver."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from tests.support.waiting import eventually


@asynccontextmanager
async def served(app, port: int, **config) -> AsyncIterator[uvicorn.Server]:
    """`app` on 127.0.0.1:`port` (uvicorn `config` on top of no logging setup and no access
    log) from the moment uvicorn has started until the block ends; a failed start raises here."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **{
        "log_config": None, "access_log": False, **config}))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), interval=0.02)
    if task.done():
        task.result()  # the error it stopped with
        raise AssertionError(f"uvicorn stopped before it served on port {port}")
    try:
        yield server
    finally:
        server.should_exit = True
        await task
