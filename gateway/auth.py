"""Workspace API keys: the write key (HTTP Basic user name, or `writeKey` in the body) for
tracking, the admin key (`Authorization: Bearer`) for management. Every authenticated request
takes from its workspace's bucket for that kind of key (gateway/ratelimit.py)."""

import base64
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBasic, HTTPBearer

from gateway import cors, ratelimit
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
    quota = await request.app.state.rate_limits.take(principal.kind, principal.workspace_id)
    ratelimit.remember(request.scope, quota)
    if not quota.allowed:
        raise ApiError(429, "rate_limited", f"more than {quota.limit} requests for this workspace's {kind} key "
                       f"in the window; retry in {quota.reset_seconds} s", headers=quota.headers())
    return principal


async def admin(request: Request, _: Annotated[None, ADMIN_KEY]) -> Principal:
    """FastAPI dependency of every management route."""
    # A write key sent as Basic is still recognised, so it gets 403 (wrong key) rather than 401.
    return await authenticate(request, bearer(request) or basic_user(request), ADMIN)


async def write_key(request: Request, key: str | None) -> Principal:
    """The write key's workspace; a page of one of its allowed origins may read the answer."""
    principal = await authenticate(request, key, WRITE)
    await cors.admit(request, principal.workspace_id)
    return principal


async def writer(request: Request, _: Annotated[None, WRITE_KEY]) -> Principal:
    """FastAPI dependency of the SDK routes that take the write key as HTTP Basic."""
    return await write_key(request, basic_user(request))


Writer = Annotated[Principal, Depends(writer)]

