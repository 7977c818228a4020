"""The SDK's in-app inbox and in-app engagement: the write key (HTTP Basic) and a user token
for the userId (identity.py), since the write key is public. Reading the inbox changes
nothing; the SDK marks what it showed with `POST /v1/inapp/seen`. Browsers may call these
from a workspace's allowed origins (cors.py)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from gateway.edge import CheckedRoute
from gateway.errors import ApiError, responses
from gateway.identity import AppUser, User
from gateway.rpc import context_of, rpc, time_json
from kit.transport import service_actor
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2 as pb
from nudge.profile.v1 import profile_pb2

router = APIRouter(tags=["messages"], route_class=CheckedRoute,
                   responses=responses(401, 403, 404, 413, 422, 429, 503))
# The inbox's own ids (UUIDs): nothing else can name a message.
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z_-]+$")]


class SeenIn(BaseModel):
    ids: list[MessageId] = Field(..., min_length=1, max_length=100,
                                 description="the `id`s of inbox messages the app showed")


async def profile_of(request: Request, user: AppUser) -> str | None:
    """The verified person's profile, None when there is none yet."""
    # The gateway's own lookup (the key gets no profile data, only the person's inbox), so
    # not audited as the key reading a profile.
    found = await rpc(request).profile.LookupProfiles(profile_pb2.LookupProfilesRequest(
        context=common_pb2.RequestContext(workspace_id=user.principal.workspace_id, actor=service_actor("gateway")),
        identifier_type="user_id", value=user.user_id))
    return found.profiles[0].id if found.profiles else None


@router.get("/v1/inapp", summary="The in-app messages waiting for a person (write key + user token); "
                                  "reading changes nothing")
async def inbox(request: Request, response: Response, user: User) -> dict:
    profile_id = await profile_of(request, user)
    messages = []
    if profile_id is not None:
        reply = await rpc(request).dispatch.FetchInApp(pb.FetchInAppRequest(
            context=context_of(user.principal), profile_id=profile_id))
        messages = [{"id": m.id, "deliveryId": m.delivery_id, "title": m.title or None, "body": m.body,
                     "url": m.url or None, "createdAt": time_json(m, "created_at")} for m in reply.messages]
    response.headers["Cache-Control"] = "no-store"  # a person's messages: no shared cache keeps a copy
    return {"messages": messages}


@router.post("/v1/inapp/seen", summary="Mark in-app messages the app showed as seen: they leave the inbox "
                                       "(write key + user token)")
async def mark_seen(body: SeenIn, request: Request, user: User) -> dict:
    """Counts the messages marked now; ids of someone else's, unknown or already seen count nothing."""
    profile_id = await profile_of(request, user)
    if profile_id is None:
        return {"marked": 0}
    reply = await rpc(request).dispatch.MarkInAppSeen(pb.MarkInAppSeenRequest(
        context=context_of(user.principal), profile_id=profile_id, ids=body.ids))
    return {"marked": reply.marked}


async def _engagement(request: Request, user: AppUser, delivery_id: str, kind: str) -> dict:
    profile_id = await profile_of(request, user)
    if profile_id is None:
        raise ApiError(404, "not_found", f"no in-app message {delivery_id!r} for this person",
                       {"field": "delivery_id"})
    reply = await rpc(request).dispatch.RecordInAppEngagement(pb.RecordInAppEngagementRequest(
        context=context_of(user.principal), delivery_id=delivery_id, profile_id=profile_id, kind=kind,
        user_agent=request.headers.get("user-agent", ""), ip=request.client.host if request.client else "",
        request_id=str(uuid.uuid4())))
    return {"recorded": reply.recorded}


@router.post("/v1/inapp/{delivery_id}/impression",
             summary="An in-app message was shown to the person (write key + user token)")
async def inapp_impression(delivery_id: str, request: Request, user: User) -> dict:
    return await _engagement(request, user, delivery_id, "impression")


@router.post("/v1/inapp/{delivery_id}/click", summary="The person clicked an in-app message (write key + user token)")
async def inapp_click(delivery_id: str, request: Request, user: User) -> dict:
    return await _engagement(request, user, delivery_id, "click")
