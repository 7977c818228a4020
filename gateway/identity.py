"""Identity verification of the person an SDK speaks for (what Intercom and Braze call identity
verification). The write key ships in apps and pages, so anyone has it: reading a person's
in-app inbox or recording their engagement also needs a user token, the hex HMAC-SHA256 of
the userId under the workspace's identity secret. Only the customer's backend holds the
secret; it computes the token when the person signs in and hands it to the app.

A workspace without an identity secret answers these routes 401 (secure by default). The
current and the previous secret are both accepted, so rotating breaks no app in the field
until the admin revokes the previous one."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from gateway.auth import Writer
from gateway.errors import ApiError
from gateway.workspaces import Principal

USER_TOKEN_HEADER = "X-Nudge-User-Token"
MAX_USER_ID = 200  # as in tracking calls


def new_secret() -> str:
    return f"nk_i_{secrets.token_urlsafe(32)}"


def user_token(secret: str, user_id: str) -> str:
    """What the customer's backend computes: key = the secret, message = the userId (UTF-8)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verifies(token: str, user_id: str, accepted: tuple[str, ...]) -> bool:
    given = token.strip().lower().encode()  # bytes: compare_digest refuses non-ASCII text
    # Every accepted secret is tried (a list, not a short-circuit), each in constant time.
    return any([hmac.compare_digest(given, user_token(secret, user_id).encode()) for secret in accepted])


@dataclass(frozen=True)
class AppUser:
    """A signed-in person the SDK speaks for, verified by their user token."""
    principal: Principal
    user_id: str


async def app_user(
        request: Request, principal: Writer,
        userId: Annotated[str, Query(max_length=MAX_USER_ID, description="the signed-in person's userId")] = "",
        token: Annotated[str | None, Header(alias=USER_TOKEN_HEADER, description=(
            "hex HMAC-SHA256 of the userId under the workspace's identity secret"))] = None,
        userToken: Annotated[str, Query(description=f"the user token, when the {USER_TOKEN_HEADER} "
                                                    "header cannot be sent")] = "") -> AppUser:
    """FastAPI dependency of the inbox and in-app engagement routes: the write key (Basic),
    the userId and its user token."""
    if not userId:
        raise ApiError(422, "invalid_argument", "userId: required; the inbox and in-app engagement belong to "
                       "a signed-in person (an anonymous visitor has no user token)", {"field": "userId"})
    accepted = (await request.app.state.sdk_settings.identity_secrets(principal.workspace_id)).accepted
    if not accepted:
        raise ApiError(401, "unauthorized", "identity verification is not configured for this workspace: an "
                       "admin creates its identity secret (POST /v1/settings/identity-secret) and the app's "
                       "backend signs each userId with it", {"field": USER_TOKEN_HEADER})
    given = token or userToken
    if not given:
        raise ApiError(401, "unauthorized", f"missing user token: send {USER_TOKEN_HEADER}, the hex HMAC-SHA256 "
                       "of the userId under the workspace's identity secret", {"field": USER_TOKEN_HEADER})
    if not verifies(given, userId, accepted):
        raise ApiError(401, "unauthorized", "the user token does not match this userId",
                       {"field": USER_TOKEN_HEADER})
    return AppUser(principal, userId)


User = Annotated[AppUser, Depends(app_user)]
