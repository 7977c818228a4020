"""A local HTTP endpoint standing in for a customer's webhook (the `receiver` fixture in
tests/conftest.py serves one per test)."""

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.processes import free_port
from tests.support.servers import served


class Receiver:
    """Records each request it receives."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: Request) -> JSONResponse:
        self.requests.append({"headers": dict(request.headers), "body": await request.json()})
        return JSONResponse({"ok": True})


@asynccontextmanager
async def serving_receiver():
    hook = Receiver()

    async def endpoint(request: Request) -> JSONResponse:
        return await hook.handle(request)  # looked up per request: a test may replace it
    app = Starlette(routes=[Route("/hook", endpoint, methods=["POST"])])
    async with served(app, hook.port, lifespan="off"):
        yield hook


def webhook_config(hook: Receiver) -> dict:
    return {"url": hook.url, "secret": "s3cret", "allowed_hosts": ["127.0.0.1"]}
