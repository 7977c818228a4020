"""CORS for the routes browser SDKs call (tracking, the short paths analytics.js posts to, and
the in-app inbox), by each workspace's allowed origins. Starlette's CORSMiddleware has one
list for the whole app; here the list is the workspace's, known only once the write key is.

- A preflight (OPTIONS) carries no credentials, so it cannot name a workspace: on these paths
  it is answered for any origin, allowing the methods and headers the SDKs send. That only
  lets the browser send the request; the write key is public and could be sent by anyone.
- The actual response carries `Access-Control-Allow-Origin` (and exposes the `RateLimit-*`
  headers) only when the request's Origin is one the write key's workspace allows
  (`PUT /v1/settings/allowed-origins`), so only the workspace's own pages can read the
  answers. Never with credentials (no cookies here). A 429 comes before the workspace's
  origins are looked up (a flood costs no query), so a page cannot read it.
- Admin routes get no CORS at all: an admin key has no business in a web page."""

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Tracking (long and short Segment paths) and the in-app inbox.
SDK_PATHS = re.compile(r"^/v1/(identify|track|page|screen|group|alias|batch|[tipsgab]"
                       r"|inapp(/seen|/[^/]+/(impression|click))?)$")
ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Nudge-User-Token"
MAX_AGE = "600"
# Where the caller stands in its rate limit (ratelimit.py): readable by the SDK on the page.
EXPOSED_HEADERS = "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"


async def admit(request: Request, workspace_id: str) -> None:
    """Called once the write key named the workspace: its answer may be read by this page."""
    origin = request.headers.get("origin")
    if origin and origin in await request.app.state.sdk_settings.allowed_origins(workspace_id):
        request.state.cors_origin = origin


class WorkspaceCors:
    """The ASGI layer: answers preflights on the SDK paths, and adds the allowed origin that
    `admit` found to the response (errors included, so an SDK can read why it was refused)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not SDK_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers:
            await _preflight(headers["origin"], send)
            return
        state = scope.setdefault("state", {})  # the same dict request.state writes into

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if origin := state.get("cors_origin"):
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(origin: str, send: Send) -> None:
    headers = [(b"access-control-allow-origin", origin.encode("latin-1")),
               (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
               (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
               (b"access-control-max-age", MAX_AGE.encode()), (b"vary", b"Origin"),
               (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
