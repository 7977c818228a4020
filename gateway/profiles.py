"""Management of profiles with the admin key: look up, events, consent, GDPR export and
erase, the identity policy. Every call names its key for the audit log (gateway/audit.py)."""

import asyncio
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ConfigDict, Field

from gateway import auth
from gateway import answers
from gateway.answers import answer
from gateway.edge import CheckedRoute, Moment
from gateway.errors import ADMIN_ERRORS, ApiError
from gateway.rpc import context_of, rpc
from gateway.workspaces import Principal
from nudge.common.v1 import common_pb2
from nudge.profile.v1 import profile_pb2 as pb

router = APIRouter(tags=["profiles"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]

_LOOKUP_PARAMS = {"userId": "user_id", "anonymousId": "anonymous_id", "email": "email",
                  "phone": "phone", "deviceToken": "device_token"}


def profile_json(profile: pb.Profile) -> dict:
    return {
        "id": profile.id,
        "identities": [{"type": i.type, "value": i.value, "firstSeen": i.first_seen.ToJsonString()}
                       for i in profile.identities],
        "traits": orjson.loads(profile.traits_json or "{}"),
        "consent": {c.purpose: {"granted": c.granted, "at": c.at.ToJsonString(), "source": c.source}
                    for c in profile.consent},
        "createdAt": profile.created_at.ToJsonString(),
        "lastSeenAt": profile.last_seen_at.ToJsonString() if profile.HasField("last_seen_at") else None,
        "mergedIds": list(profile.merged_ids),
    }


@router.get("/v1/profiles/{profile_id}", responses=answer(answers.Profile),
            summary="A profile by its id (merged ids lead to the survivor)")
async def get_profile(profile_id: str, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).profile.GetProfile(pb.GetProfileRequest(context=context_of(principal), profile_id=profile_id))
    return profile_json(reply)


@router.get("/v1/profiles", responses=answer(answers.Profiles), summary="Profiles by one identifier")
async def lookup_profiles(request: Request, principal: Admin,
                          userId: str | None = None, anonymousId: str | None = None,
                          email: str | None = None, phone: str | None = None,
                          deviceToken: str | None = None) -> dict:
    given = {name: value for name, value in [("userId", userId), ("anonymousId", anonymousId), ("email", email),
                                             ("phone", phone), ("deviceToken", deviceToken)] if value}
    if len(given) != 1:
        raise ApiError(422, "invalid_argument", f"give exactly one of {', '.join(_LOOKUP_PARAMS)}",
                       {"field": "query"})
    (name, value), = given.items()
    reply = await rpc(request).profile.LookupProfiles(pb.LookupProfilesRequest(
        context=context_of(principal), identifier_type=_LOOKUP_PARAMS[name], value=value))
    return {"profiles": [profile_json(p) for p in reply.profiles]}


@router.get("/v1/profiles/{profile_id}/events", responses=answer(answers.Events),
            summary="A profile's events, newest first")
async def list_events(profile_id: str, request: Request, principal: Admin,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str = "") -> dict:
    reply = await rpc(request).profile.ListEvents(pb.ListEventsRequest(
        context=context_of(principal), profile_id=profile_id,
        page=common_pb2.PageRequest(size=limit, cursor=cursor)))
    return {"events": [_event_json(e) for e in reply.events], "nextCursor": reply.next_cursor or None}


def _event_json(event: pb.Event) -> dict:
    call = MessageToDict(event.call, preserving_proto_field_name=False)
    for key in ("propertiesJson", "traitsJson", "contextJson", "integrationsJson"):
        if key in call:
            call[key.removesuffix("Json")] = orjson.loads(call.pop(key))
    return {"id": event.id, "profileId": event.profile_id, "timestamp": event.timestamp.ToJsonString(), **call}


class ConsentIn(BaseModel):
    granted: bool
    at: Moment | None = Field(None, description="when the person gave or withdrew it (1970–2099); default now")
    source: str = Field(..., min_length=1, max_length=200, description="where it was collected, e.g. signup_form")


class ConsentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a purpose we do not know (e.g. the old `marketing`) is refused

    channels: dict[str, ConsentIn] = Field(
        default_factory=dict, description="per channel (email, sms, kakao, push, webpush, inapp, webhook): "
                                          "non-transactional messages such as newsletters; receipts never need it")
    ads: dict[str, ConsentIn] = Field(
        default_factory=dict, description="advertising per channel (ads:<channel>), e.g. {\"sms\": {...}}")
    advertising: ConsentIn | None = Field(None, description="advertising on every channel: one ads:<channel> "
                                                             "record per channel")
    night_advertising: ConsentIn | None = Field(None, description="advertising between 21:00 and 08:00 KST")


@router.put("/v1/profiles/{profile_id}/consent", responses=answer(answers.Profile),
            summary="Record consent given or withdrawn")
async def update_consent(profile_id: str, body: ConsentUpdate, request: Request, principal: Admin) -> dict:
    items = [(f"channel:{c}", v) for c, v in body.channels.items()]
    items += [(f"ads:{c}", v) for c, v in body.ads.items()]
    items += [(p, getattr(body, p)) for p in ("advertising", "night_advertising") if getattr(body, p)]
    changes = []
    for purpose, value in items:
        change = pb.ConsentChange(purpose=purpose, granted=value.granted, source=value.source)
        if value.at is not None:
            change.at.FromDatetime(value.at)  # naive times are read as UTC
        changes.append(change)
    reply = await rpc(request).profile.UpdateConsent(pb.UpdateConsentRequest(
        context=context_of(principal), profile_id=profile_id, changes=changes))
    return profile_json(reply)


@router.get("/v1/profiles/{profile_id}/export",
            summary="GDPR export: everything every service holds about a person")
async def export_profile(profile_id: str, request: Request, principal: Admin) -> dict:
    """One section per service. The profile service answers first: it finds the person (a
    merged id leads to the survivor; no one is a 404), audits the export and names the
    profiles merged into them; then the other four together. One that does not answer fails
    the whole export (503): an incomplete export must not look complete."""
    services, context = rpc(request), context_of(principal)
    held = orjson.loads((await services.profile.ExportProfile(
        pb.ExportProfileRequest(context=context, profile_id=profile_id))).export_json)
    person = held["profile"]
    question = common_pb2.ExportProfileRequest(context=context, profile_id=person["id"],
                                               merged_ids=person["merged_ids"])
    others = {"segment": services.segment, "journey": services.journey, "dispatch": services.dispatch,
              "metrics": services.metrics}
    answers = await asyncio.gather(*(service.ExportProfile(question) for service in others.values()),
                                   return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer  # mapped by gateway.errors: a service down or too slow is a 503
    return {"profileId": person["id"], "mergedIds": person["merged_ids"], "profile": held,
            **{name: orjson.loads(answer.export_json) for name, answer in zip(others, answers, strict=True)}}


@router.delete("/v1/profiles/{profile_id}", responses=answer(answers.Erased),
               summary="GDPR erase: the person in every service; later replays of their calls are dropped")
async def delete_profile(profile_id: str, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).profile.DeleteProfile(pb.DeleteProfileRequest(context=context_of(principal), profile_id=profile_id))
    return {"deleted": True, "eventsErased": reply.events_erased}


class IdentityPolicyBody(BaseModel):
    uniqueIdentifiers: list[str] = Field(
        ..., max_length=10, description="identifier types (email, phone, device_token) that belong to one person: "
                         "profiles sharing one are merged even when both have a userId")


@router.get("/v1/identity-policy", responses=answer(answers.IdentityPolicy),
            summary="Which identifier types merge profiles")
async def get_identity_policy(request: Request, principal: Admin) -> dict:
    reply = await rpc(request).profile.GetIdentityPolicy(pb.GetIdentityPolicyRequest(context=context_of(principal)))
    return {"uniqueIdentifiers": list(reply.unique_identifiers)}


@router.put("/v1/identity-policy", responses=answer(answers.IdentityPolicy),
            summary="Set which identifier types merge profiles")
async def set_identity_policy(body: IdentityPolicyBody, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).profile.SetIdentityPolicy(pb.SetIdentityPolicyRequest(
        context=context_of(principal), policy=pb.IdentityPolicy(unique_identifiers=body.uniqueIdentifiers)))
    return {"uniqueIdentifiers": list(reply.unique_identifiers)}

