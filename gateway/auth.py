"""Workspace API keys: the write key (HTTP Basic user name, or `writeKey` in the body) for
tracking, the admin key (`Authorization: Bearer`) for management. Plus the per-workspace
rate limit, counted in Redis so every gateway replica shares it."""

import base64
import time

from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPBasic, HTTPBearer

from gateway.errors import ApiError
from gateway.keys import ADMIN, WRITE
from gateway.workspaces import Principal


class _WriteKeyScheme(HTTPBasic):
    """Declares the write key in the OpenAPI document; `authenticate` reads and checks it."""

    async def __call__(self, request: Request) -> None:
        return None


class _AdminKeyScheme(HTTPBearer):
    """Declares the admin key in the OpenAPI document; `authenticate` reads and checks it."""

    async def __call__(self, request: Request) -> None:
        return None


WRITE_KEY = Security(_WriteKeyScheme(scheme_name="writeKey", description=(
    "The workspace's write key as the user name, empty password (what Segment SDKs send). Tracking calls "
    "may instead carry it as `writeKey` in the body.")))
ADMIN_KEY = Security(_AdminKeyScheme(scheme_name="adminKey", description="`Authorization: Bearer <admin key>`"))


def basic_user(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(header[6:]).decode().split(":", 1)[0]
    except (ValueError, UnicodeDecodeError):
        raise ApiError(401, "unauthorized", "Authorization: malformed Basic credentials") from None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


async def authenticate(request: Request, key: str | None, kind: str) -> Principal:
    if not key:
        how = "HTTP Basic with the write key as user name" if kind == WRITE else "Authorization: Bearer <admin key>"
        raise ApiError(401, "unauthorized", f"missing API key: use {how}")
    principal = await request.app.state.workspaces.authenticate(key)
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    if principal.kind != kind:
        raise ApiError(403, "forbidden", f"a {principal.kind} key cannot be used here; this needs the {kind} key")
    await _rate_limit(request, principal.workspace_id)
    return principal


async def admin(request: Request, _: Annotated[None, ADMIN_KEY]) -> Principal:
    """FastAPI dependency of every management route."""
    # A write key sent as Basic is still recognised, so it gets 403 (wrong key) rather than 401.
    return await authenticate(request, bearer(request) or basic_user(request), ADMIN)


async def _rate_limit(request: Request, workspace_id: str) -> None:
    limit = request.app.state.settings.rate_limit_per_second
    second = int(time.time())
    key = f"ratelimit:{{{workspace_id}}}:{second}"
    async with request.app.state.redis.pipeline(transaction=True) as pipe:
        count, _ = await pipe.incr(key).expire(key, 2).execute()
    if count > limit:
        raise ApiError(429, "rate_limited", f"more than {limit} requests per second for this workspace",
                       headers={"Retry-After": "1"})
