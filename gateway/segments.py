"""Segments with the admin key: definitions, members, counts, is-member, preview of an
unsaved rule, explain for one profile, and the workspace's RFM settings."""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from gateway import auth
from gateway import answers
from gateway.answers import answer
from gateway.edge import CheckedRoute, Description, Id, Name
from gateway.errors import ADMIN_ERRORS, ApiError
from gateway.rpc import context_of, rpc, time_json
from gateway.workspaces import Principal
from nudge.common.v1 import common_pb2
from nudge.segment.v1 import segment_pb2 as pb

router = APIRouter(tags=["segments"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]


def _backfill(backfill: pb.Backfill) -> dict:
    return {"state": backfill.state, "done": backfill.done, "total": backfill.total, "version": backfill.version,
            "startedAt": time_json(backfill, "started_at"), "finishedAt": time_json(backfill, "finished_at")}


def segment_json(segment: pb.Segment) -> dict:
    return {"id": segment.id, "name": segment.name, "description": segment.description,
            "rules": orjson.loads(segment.rules_json), "version": segment.version,
            "createdAt": time_json(segment, "created_at"), "updatedAt": time_json(segment, "updated_at"),
            "backfill": _backfill(segment.backfill)}


def _explain_json(reply: pb.ExplainReply) -> dict:
    return {"member": reply.member, "profileId": reply.profile_id,
            "conditions": [{"path": c.path, "condition": orjson.loads(c.condition), "satisfied": c.satisfied,
                            "value": orjson.loads(c.value_json) if c.value_json else None, "reason": c.reason}
                           for c in reply.conditions],
            "nextChange": time_json(reply, "next_change")}


class SegmentIn(BaseModel):
    name: Name
    description: Description = ""
    rules: Any = Field(..., description="the rule tree: all / any / not, trait, event, last_seen, rfm, segment")


class SegmentPatch(BaseModel):
    name: Name | None = None
    description: Description | None = None
    rules: Any = Field(None, description="a new rule tree publishes a new version and recomputes members")


class PreviewIn(BaseModel):
    rules: Any
    sampleSize: int = Field(10, ge=1, le=100)


class ExplainIn(BaseModel):
    rules: Any
    profileId: Id


class RfmSettingsIn(BaseModel):
    orderEvent: Name = Field(..., description="the event that is an order, e.g. Order Completed")
    revenueProperty: Name = Field(..., description="its revenue property, e.g. revenue")


@router.post("/v1/segments", responses=answer(answers.Segment, 201),
             status_code=201, summary="Create a segment (members are computed in the background)")
async def create_segment(body: SegmentIn, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.CreateSegment(pb.CreateSegmentRequest(
        context=context_of(principal), name=body.name, description=body.description,
        rules_json=orjson.dumps(body.rules).decode()))
    return segment_json(reply)


@router.get("/v1/segments", responses=answer(answers.Segments), summary="Segments of the workspace")
async def list_segments(request: Request, principal: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                        cursor: str = "") -> dict:
    reply = await rpc(request).segment.ListSegments(pb.ListSegmentsRequest(
        context=context_of(principal), page=common_pb2.PageRequest(size=limit, cursor=cursor)))
    return {"segments": [segment_json(s) for s in reply.segments], "nextCursor": reply.next_cursor or None}


@router.post("/v1/segments/preview", responses=answer(answers.Preview), summary="Count and sample of an unsaved rule")
async def preview(body: PreviewIn, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.Preview(pb.PreviewRequest(
        context=context_of(principal), rules_json=orjson.dumps(body.rules).decode(), sample_size=body.sampleSize))
    return {"count": reply.count, "total": reply.total, "sample": list(reply.sample_profile_ids)}


@router.post("/v1/segments/explain", responses=answer(answers.Explained),
             summary="Why a profile is in or out of an unsaved rule")
async def explain_rule(body: ExplainIn, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.Explain(pb.ExplainRequest(
        context=context_of(principal), rules_json=orjson.dumps(body.rules).decode(), profile_id=body.profileId))
    return _explain_json(reply)


@router.get("/v1/segments/{segment_id}", responses=answer(answers.Segment),
            summary="A segment, with its backfill progress")
async def get_segment(segment_id: str, request: Request, principal: Admin) -> dict:
    return segment_json(await rpc(request).segment.GetSegment(pb.GetSegmentRequest(
        context=context_of(principal), id=segment_id)))


@router.patch("/v1/segments/{segment_id}", responses=answer(answers.Segment),
              summary="Rename, describe or change the rules of a segment")
async def update_segment(segment_id: str, body: SegmentPatch, request: Request, principal: Admin) -> dict:
    given = body.model_dump(exclude_unset=True, exclude_none=True)
    if not given:
        raise ApiError(422, "invalid_argument", "body: give at least one of name, description, rules",
                       {"field": "body"})
    message = pb.UpdateSegmentRequest(context=context_of(principal), id=segment_id)
    if "name" in given:
        message.name = body.name
    if "description" in given:
        message.description = body.description
    if "rules" in given:
        message.rules_json = orjson.dumps(body.rules).decode()
    return segment_json(await rpc(request).segment.UpdateSegment(message))


@router.delete("/v1/segments/{segment_id}", status_code=204,
               summary="Delete a segment no other segment and no live journey uses")
async def delete_segment(segment_id: str, request: Request, principal: Admin) -> Response:
    await rpc(request).segment.DeleteSegment(pb.DeleteSegmentRequest(context=context_of(principal), id=segment_id))
    return Response(status_code=204)


@router.get("/v1/segments/{segment_id}/count", responses=answer(answers.MemberCount),
            summary="How many profiles are members now")
async def count_members(segment_id: str, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.CountMembers(pb.CountMembersRequest(context=context_of(principal), id=segment_id))
    return {"count": reply.count, "version": reply.version, "backfill": _backfill(reply.backfill)}


@router.get("/v1/segments/{segment_id}/members", responses=answer(answers.Members),
            summary="Members, by profile id, a page at a time")
async def list_members(segment_id: str, request: Request, principal: Admin,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str = "") -> dict:
    reply = await rpc(request).segment.ListMembers(pb.ListMembersRequest(
        context=context_of(principal), id=segment_id, page=common_pb2.PageRequest(size=limit, cursor=cursor)))
    return {"members": [{"profileId": m.profile_id, "since": m.since.ToJsonString(), "version": m.version}
                        for m in reply.members],
            "nextCursor": reply.next_cursor or None}


@router.get("/v1/segments/{segment_id}/members/{profile_id}", responses=answer(answers.Membership),
            summary="Is this profile a member now")
async def is_member(segment_id: str, profile_id: str, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.IsMember(pb.IsMemberRequest(
        context=context_of(principal), id=segment_id, profile_id=profile_id))
    return {"member": reply.member, "profileId": reply.profile_id}


@router.get("/v1/segments/{segment_id}/explain/{profile_id}", responses=answer(answers.Explained),
            summary="Why a profile is in or out")
async def explain_segment(segment_id: str, profile_id: str, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.Explain(pb.ExplainRequest(
        context=context_of(principal), id=segment_id, profile_id=profile_id))
    return _explain_json(reply)


@router.get("/v1/segment-settings/rfm", responses=answer(answers.RfmSettings),
            summary="Which event is an order, for RFM scores")
async def get_rfm_settings(request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.GetRfmSettings(pb.GetRfmSettingsRequest(context=context_of(principal)))
    return {"orderEvent": reply.order_event, "revenueProperty": reply.revenue_property}


@router.put("/v1/segment-settings/rfm", responses=answer(answers.RfmSettings),
            summary="Set which event is an order, for RFM scores")
async def set_rfm_settings(body: RfmSettingsIn, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).segment.SetRfmSettings(pb.SetRfmSettingsRequest(
        context=context_of(principal),
        settings=pb.RfmSettings(order_event=body.orderEvent, revenue_property=body.revenueProperty)))
    return {"orderEvent": reply.order_event, "revenueProperty": reply.revenue_property}
