"""Messages: direct transactional sends (`Idempotency-Key`), templates, channel providers,
the sending policy and delivery lookups with the admin key; providers' delivery receipts on
signed URLs. The SDK's in-app inbox is in inbox.py."""

import hmac
from typing import Annotated, Any, Literal

import grpc
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from grpc import aio
from pydantic import BaseModel, Field

from gateway import auth, keys
from gateway import answers
from gateway.answers import answer
from gateway.edge import CheckedRoute, Id, Name
from gateway.errors import ADMIN_ERRORS, ApiError, responses
from gateway.rpc import context_of, rpc, time_json
from gateway.workspaces import Principal
from kit.errors import field_of
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2 as pb

router = APIRouter(tags=["messages"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]


def delivery_json(d: pb.Delivery) -> dict:
    return {"id": d.id, "idempotencyKey": d.idempotency_key, "profileId": d.profile_id, "status": d.status,
            "channel": d.channel or None, "provider": d.provider or None,
            "providerMessageId": d.provider_message_id or None, "reason": d.reason or None,
            "rule": d.rule or None, "deferredUntil": time_json(d, "deferred_until"),
            "nextAllowedAt": time_json(d, "next_allowed_at"), "consent": orjson.loads(d.consent_json or "{}"),
            "attempts": [{"channel": a.channel, "provider": a.provider or None, "outcome": a.outcome,
                          "reason": a.reason or None, "at": time_json(a, "at")} for a in d.attempts],
            "templateId": d.template_id, "templateVersion": d.template_version or None,
            "advertising": d.advertising, "journeyId": d.journey_id or None, "nodeId": d.node_id or None,
            "journeyVersion": d.journey_version or None, "variant": d.variant or None,
            "createdAt": time_json(d, "created_at"), "updatedAt": time_json(d, "updated_at")}


def _template_json(t: pb.Template) -> dict:
    return {"id": t.id, "name": t.name, "version": t.version, "channels": orjson.loads(t.channels_json),
            "variables": list(t.variables), "createdAt": time_json(t, "created_at")}


def _config_json(c: pb.ChannelConfig) -> dict:
    return {"channel": c.channel, "provider": c.provider, "config": orjson.loads(c.config_json),
            "updatedAt": time_json(c, "updated_at")}


class MessageIn(BaseModel):
    profileId: Id
    channels: list[str] = Field(..., min_length=1, max_length=10,
                                description="fallback order, e.g. [\"alimtalk\", \"sms\"]")
    templateId: Id
    advertising: bool = False
    transactional: bool | None = Field(None, description="exempt from fatigue limits when the policy allows; "
                                                          "default: true unless advertising")
    variables: dict[str, Any] = Field(default_factory=dict, description=(
        "{\"event\": {...}, \"journey\": {...}}: `event` is the event's properties themselves "
        "(`{{ event.amount }}`), `journey` any context; `profile` is the person's traits"))
    order: Literal["first_allowed", "strict"] = Field(
        "first_allowed", description="when a channel may not send yet (night rule, Kakao's window, quiet hours): "
                                     "first_allowed takes the next channel allowed now, strict waits for it")


class TemplateIn(BaseModel):
    name: str = Field("", max_length=200)
    channels: dict[str, Any] = Field(..., description="content per channel, e.g. {\"sms\": {\"text\": \"...\"}}")


class ChannelConfigIn(BaseModel):
    provider: Name
    config: dict[str, Any] = Field(..., description=(
        "The provider's endpoint, credentials and sender (fields per provider). Every provider also takes "
        "`rate_per_second` (sustained requests per second to this provider for the workspace, shared by every "
        "dispatch replica; default `NUDGE_PROVIDER_RATE_PER_SECOND`) and `burst` (how many requests may go at "
        "once after a quiet spell, the token bucket's size; default `NUDGE_PROVIDER_BURST`): a send over the "
        "rate waits for its turn, it is not dropped. `timeout_seconds` bounds one provider call."))


@router.post("/v1/messages", responses=answer(answers.Delivery),
             summary="Send one message now (transactional by default), idempotently")
async def send_message(body: MessageIn, request: Request, principal: Admin,
                       idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1,
                                                              max_length=200)]) -> dict:
    """The same key with the same body answers the first send's result; with another body, 422."""
    try:
        reply = await rpc(request).dispatch.Send(pb.SendRequest(
            context=context_of(principal), idempotency_key=idempotency_key, profile_id=body.profileId,
            channels=body.channels, template_id=body.templateId, advertising=body.advertising,
            transactional=not body.advertising if body.transactional is None else body.transactional,
            variables_json=orjson.dumps(body.variables).decode(), order=body.order))
    except aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.INVALID_ARGUMENT and field_of(err) == "idempotency_key":
            # Over HTTP the key is the header: name it as the caller wrote it.
            message = (err.details() or "").replace("idempotency_key:", "Idempotency-Key:", 1)
            raise ApiError(422, "invalid_argument", message, {"field": "Idempotency-Key"}) from None
        raise
    return delivery_json(reply)


@router.get("/v1/deliveries/{delivery_id}", responses=answer(answers.Delivery),
            summary="One send: status, channel, consent evidence, attempts")
async def get_delivery(delivery_id: str, request: Request, principal: Admin) -> dict:
    return delivery_json(await rpc(request).dispatch.GetDelivery(
        pb.GetDeliveryRequest(context=context_of(principal), id=delivery_id)))


@router.get("/v1/profiles/{profile_id}/deliveries", responses=answer(answers.Deliveries),
            summary="Why a person did or did not get messages: sends, suppressions, deferrals, newest first")
async def list_deliveries(profile_id: str, request: Request, principal: Admin,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str = "") -> dict:
    reply = await rpc(request).dispatch.ListDeliveries(pb.ListDeliveriesRequest(
        context=context_of(principal), profile_id=profile_id, page=common_pb2.PageRequest(size=limit, cursor=cursor)))
    return {"deliveries": [delivery_json(d) for d in reply.deliveries], "nextCursor": reply.next_cursor or None}


@router.put("/v1/templates/{template_id}", responses=answer(answers.Template),
            summary="Create a template or publish its next version")
async def put_template(template_id: str, body: TemplateIn, request: Request, principal: Admin) -> dict:
    return _template_json(await rpc(request).dispatch.PutTemplate(pb.PutTemplateRequest(
        context=context_of(principal), id=template_id, name=body.name,
        channels_json=orjson.dumps(body.channels).decode())))


@router.get("/v1/templates", responses=answer(answers.Templates), summary="Templates, latest versions")
async def list_templates(request: Request, principal: Admin) -> dict:
    reply = await rpc(request).dispatch.ListTemplates(pb.ListTemplatesRequest(context=context_of(principal)))
    return {"templates": [_template_json(t) for t in reply.templates]}


@router.get("/v1/templates/{template_id}", responses=answer(answers.Template),
            summary="A template (the latest version unless `version`)")
async def get_template(template_id: str, request: Request, principal: Admin,
                       version: Annotated[int, Query(ge=0, le=2**31 - 1, description="0: the latest")] = 0) -> dict:
    return _template_json(await rpc(request).dispatch.GetTemplate(pb.GetTemplateRequest(
        context=context_of(principal), id=template_id, version=version)))


@router.delete("/v1/templates/{template_id}", status_code=204,
               summary="Delete a template, every version, unless a live journey uses it")
async def delete_template(template_id: str, request: Request, principal: Admin) -> Response:
    await rpc(request).dispatch.DeleteTemplate(pb.DeleteTemplateRequest(context=context_of(principal),
                                                                               id=template_id))
    return Response(status_code=204)


@router.put("/v1/channels/{channel}", responses=answer(answers.ChannelConfig),
            summary="The provider, endpoint and credentials behind a channel")
async def put_channel(channel: str, body: ChannelConfigIn, request: Request, principal: Admin) -> dict:
    return _config_json(await rpc(request).dispatch.PutChannelConfig(pb.PutChannelConfigRequest(
        context=context_of(principal), channel=channel, provider=body.provider,
        config_json=orjson.dumps(body.config).decode())))


@router.get("/v1/channels", responses=answer(answers.ChannelConfigs), summary="Channel providers (credentials masked)")
async def list_channels(request: Request, principal: Admin) -> dict:
    reply = await rpc(request).dispatch.ListChannelConfigs(
        pb.ListChannelConfigsRequest(context=context_of(principal)))
    return {"channels": [_config_json(c) for c in reply.configs]}


@router.get("/v1/dispatch-policy", summary="Fatigue limits, quiet hours, sender name and opt-out details")
async def get_policy(request: Request, principal: Admin) -> dict:
    reply = await rpc(request).dispatch.GetPolicy(pb.GetPolicyRequest(context=context_of(principal)))
    return orjson.loads(reply.policy_json)


@router.put("/v1/dispatch-policy", summary="Set fatigue limits, quiet hours, sender name and opt-out details")
async def set_policy(body: dict[str, Any], request: Request, principal: Admin) -> dict:
    reply = await rpc(request).dispatch.SetPolicy(pb.SetPolicyRequest(
        context=context_of(principal), policy_json=orjson.dumps(body).decode()))
    return orjson.loads(reply.policy_json)


MERGE_PATCH_TYPES = ("application/merge-patch+json", "application/json")


@router.patch("/v1/dispatch-policy", responses=responses(415),
              summary="Change part of the sending policy (JSON merge patch, RFC 7396)",
              description="The body is merged into the stored policy: objects key by key, `null` removes a field, "
                          "any other value replaces it. The result is checked like a whole policy (`PUT`) and "
                          "stored at once, or nothing changes. Content type `application/merge-patch+json` or "
                          "`application/json`.",
              openapi_extra={"requestBody": {"required": True, "content": {
                  kind: {"schema": {"type": "object"}, "example": {"quiet_hours": None, "sender_name": "Shop"}}
                  for kind in MERGE_PATCH_TYPES}}})
async def patch_policy(request: Request, principal: Admin) -> dict:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in MERGE_PATCH_TYPES:
        raise ApiError(415, "unsupported_media_type", f"content type: expected {' or '.join(MERGE_PATCH_TYPES)}",
                       {"field": "content-type"})
    try:
        patch = orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError:
        raise ApiError(422, "invalid_argument", "body: not valid JSON", {"field": "body"}) from None
    if not isinstance(patch, dict):
        raise ApiError(422, "invalid_argument", "body: expected a JSON object (a merge patch of the policy)",
                       {"field": "body"})
    reply = await rpc(request).dispatch.SetPolicy(pb.SetPolicyRequest(
        context=context_of(principal), policy_json=orjson.dumps(patch).decode(), merge_patch=True))
    return orjson.loads(reply.policy_json)


PROVIDERS = Literal["smtp", "nhn_sms", "nhn_kakao", "fcm", "apns", "webpush", "webhook"]


def receipt_token(request: Request, workspace_id: str, provider: str) -> str:
    """Signs the receipt URL given to a provider: the write key is public (browser SDKs
    carry it), so it cannot authenticate a provider's callback."""
    return keys.key_hash(request.app.state.workspaces.pepper, f"receipt|{workspace_id}|{provider}")[:40]


@router.get("/v1/channels/{provider}/receipt-url", responses=answer(answers.ReceiptUrl),
            summary="The URL to give a provider for delivery receipts")
async def receipt_url(provider: PROVIDERS, request: Request, principal: Admin) -> dict:
    token = receipt_token(request, principal.workspace_id, provider)
    return {"url": str(request.url_for("receipt", provider=provider, workspace_id=principal.workspace_id,
                                       token=token))}


@router.post("/v1/webhooks/{provider}/{workspace_id}/{token}", responses=answer(answers.ReceiptsRecorded),
             name="receipt",
             summary="A provider's delivery receipts, on the signed URL from /v1/channels/{provider}/receipt-url")
async def receipt(provider: PROVIDERS, workspace_id: str, token: str, request: Request) -> dict:
    if not hmac.compare_digest(token.encode(), receipt_token(request, workspace_id, provider).encode()):
        raise ApiError(404, "not_found", "unknown receipt URL")
    try:
        payload = (await request.body()).decode() or "{}"
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "body: expected UTF-8 JSON") from None
    reply = await rpc(request).dispatch.RecordReceipt(pb.RecordReceiptRequest(
        context=common_pb2.RequestContext(workspace_id=workspace_id, actor=f"provider:{provider}"),
        provider=provider, payload_json=payload))
    return {"updated": reply.updated}
