"""A workspace's settings for SDK access (admin key): the identity secret its backend signs
userIds with, so the inbox and in-app engagement know the person is who the app says
(identity.py), and the origins whose web pages may read the tracking and inbox answers
(cors.py)."""

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from gateway import auth, identity
from gateway.edge import CheckedRoute
from gateway.errors import ADMIN_ERRORS, ApiError
from gateway.sdk_settings import IdentitySecrets
from gateway.workspaces import Principal

router = APIRouter(tags=["settings"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]
MAX_ORIGINS = 100
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str:
    """`scheme://host[:port]` as a browser writes it in the Origin header (lower case, no
    default port), so the comparison with the header is exact."""
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username is not None:
        raise ValueError("expected an origin, scheme://host[:port] (http or https, no path), "
                         "e.g. https://shop.example")
    if not parts.hostname.isascii():
        raise ValueError("write an internationalized domain name in its ASCII (punycode) form, as browsers send it")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")


Origin = Annotated[str, StringConstraints(max_length=300), AfterValidator(_origin)]


class OriginsIn(BaseModel):
    origins: list[Origin] = Field(..., max_length=MAX_ORIGINS, description=(
        "Origins whose pages may read the answers of the tracking and inbox routes, e.g. "
        "[\"https://shop.example\", \"http://localhost:3000\"]; [] allows none"))


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _secret_state(secrets: IdentitySecrets) -> dict:
    return {"configured": secrets.current is not None, "createdAt": _time(secrets.created_at),
            "previousAccepted": secrets.previous is not None, "previousCreatedAt": _time(secrets.previous_created_at)}


@router.get("/v1/settings/identity-secret",
            summary="Whether identity verification is configured, and whether a previous secret is still accepted")
async def get_identity_secret(request: Request, principal: Admin) -> dict:
    return _secret_state(await request.app.state.sdk_settings.identity_secrets(principal.workspace_id))


@router.post("/v1/settings/identity-secret", status_code=201,
             summary="Create or rotate the identity secret; the new secret is shown once",
             description="The app's backend signs each userId with it: the user token is the hex HMAC-SHA256 "
                         "of the userId (UTF-8) with the secret (the whole string, UTF-8) as key, sent as "
                         f"`{identity.USER_TOKEN_HEADER}` to the inbox and in-app engagement routes. On rotation "
                         "the secret it replaces stays accepted (`previousAccepted`) until "
                         "`DELETE /v1/settings/identity-secret/previous`; a further rotation drops it.")
async def rotate_identity_secret(request: Request, principal: Admin) -> dict:
    secret = identity.new_secret()
    state = await request.app.state.sdk_settings.rotate_identity_secret(principal.workspace_id, principal.key_id, secret)
    return {"secret": secret, **_secret_state(state)}


@router.delete("/v1/settings/identity-secret/previous", status_code=204,
               summary="Stop accepting user tokens signed with the previous identity secret")
async def revoke_previous_identity_secret(request: Request, principal: Admin) -> Response:
    if not await request.app.state.sdk_settings.revoke_previous_identity_secret(principal.workspace_id, principal.key_id):
        raise ApiError(404, "not_found", "no previous identity secret is accepted", {"field": "previous"})
    return Response(status_code=204)


@router.get("/v1/settings/allowed-origins", summary="Origins whose pages may read tracking and inbox answers (CORS)")
async def get_allowed_origins(request: Request, principal: Admin) -> dict:
    return {"origins": await request.app.state.sdk_settings.allowed_origins(principal.workspace_id)}


@router.put("/v1/settings/allowed-origins", summary="Set the origins whose pages may read tracking and inbox answers")
async def put_allowed_origins(body: OriginsIn, request: Request, principal: Admin) -> dict:
    origins = list(dict.fromkeys(body.origins))  # as given, without repeats
    return {"origins": await request.app.state.sdk_settings.set_allowed_origins(principal.workspace_id, principal.key_id, origins)}
