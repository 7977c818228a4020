"""The tracking API of the Segment spec: POST /v1/identify|track|page|screen|group|alias|batch,
and the same calls on the short paths the browser and mobile SDKs post to: /v1/i|t|p|s|g|a
(analytics.js, one call each) and /v1/b (analytics.js batching, analytics-swift and
analytics-kotlin). The write key comes as HTTP Basic or as `writeKey` in the body; the body is
JSON whatever the content type says (analytics.js sends `text/plain` to avoid a preflight).

Bodies may be gzip-compressed; one call is at most 32 KB and a batch 500 KB. Each call is
checked here for shape (naming the bad field), then the profile service stores the good
ones; a batch answers which calls it rejected, by index.
"""

import uuid
from datetime import datetime, timezone

import orjson
from fastapi import APIRouter, Request
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import auth
from gateway.edge import CheckedRoute, read_body
from gateway.errors import WRITE_ERRORS, ApiError
from gateway.rpc import rpc
from kit import limits
from kit.errors import InvalidArgument
from nudge.common.v1 import common_pb2
from nudge.profile.v1 import profile_pb2 as pb

router = APIRouter(tags=["tracking"], route_class=CheckedRoute, responses=WRITE_ERRORS, dependencies=[auth.WRITE_KEY])

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# The SDKs' path of each call type: its first letter (`/v1/b` for a batch).
SHORT_PATHS = {call_type: call_type[0] for call_type in CALL_TYPES}
_MAX_ID = 200
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)


class CallError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _id(raw: dict, key: str) -> str:
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CallError(key, "expected a string")
    value = str(value)
    if len(value) > _MAX_ID:
        raise CallError(key, f"longer than {_MAX_ID} characters")
    return value


def _object(raw: dict, key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise CallError(key, "expected an object")
    return orjson.dumps(value).decode()


def _time(raw: dict, key: str) -> Timestamp | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CallError(key, "expected an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CallError(key, "expected an ISO-8601 date-time string") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if not _EARLIEST <= parsed < _LATEST:
        raise CallError(key, "expected a date-time between 1970 and 2099")
    stamp = Timestamp()
    stamp.FromDatetime(parsed.astimezone(timezone.utc))
    return stamp


def parse_call(raw: object, call_type: str | None, received_at: Timestamp, batch_sent_at: Timestamp | None,
               client_ip: str | None, max_bytes: int) -> pb.TrackingCall:
    """One Segment call → the profile service's message, or CallError naming the field."""
    if not isinstance(raw, dict):
        raise CallError("", "expected a JSON object")
    encoded = orjson.dumps(raw)
    if len(encoded) > max_bytes:
        raise CallError("", f"call larger than {max_bytes // 1024} KB")
    try:
        limits.check_json(raw)  # NUL, nesting, sizes: what PostgreSQL and the other tenants need
    except InvalidArgument as err:
        raise CallError(err.field, err.message.removeprefix(f"{err.field}: ")) from None
    kind = call_type or raw.get("type")
    if kind not in CALL_TYPES:
        raise CallError("type", f"expected one of {', '.join(CALL_TYPES)}")
    user_id, anonymous_id = _id(raw, "userId"), _id(raw, "anonymousId")
    if kind == "alias":
        if not user_id:
            raise CallError("userId", "alias needs the userId to alias to")
        if not _id(raw, "previousId"):
            raise CallError("previousId", "alias needs the previousId (the former userId or anonymousId)")
    elif not user_id and not anonymous_id:
        raise CallError("userId", "either userId or anonymousId is required")
    event = raw.get("event")
    if kind == "track" and (not isinstance(event, str) or not event.strip()):
        raise CallError("event", "track needs a non-empty event name")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise CallError("name", "expected a string")
    for key, text in (("event", event), ("name", name)):  # rules name events in at most as many
        if isinstance(text, str) and len(text) > _MAX_ID:
            raise CallError(key, f"longer than {_MAX_ID} characters")
    if kind == "group" and not _id(raw, "groupId"):
        raise CallError("groupId", "group needs a groupId")
    message_id = _id(raw, "messageId") or f"nudge-{uuid.uuid4()}"
    context = raw.get("context")
    if isinstance(context, dict) and client_ip and "ip" not in context:
        raw = {**raw, "context": {**context, "ip": client_ip}}
    call = pb.TrackingCall(
        type=kind, message_id=message_id, user_id=user_id, anonymous_id=anonymous_id,
        event=event if kind == "track" else "", name=name or "", group_id=_id(raw, "groupId"),
        previous_id=_id(raw, "previousId"), properties_json=_object(raw, "properties"),
        traits_json=_object(raw, "traits"), context_json=_object(raw, "context"),
        integrations_json=_object(raw, "integrations"), received_at=received_at)
    original = _time(raw, "originalTimestamp") or _time(raw, "timestamp")
    if original is not None:
        call.original_timestamp.CopyFrom(original)
    sent_at = _time(raw, "sentAt") or batch_sent_at
    if sent_at is not None:
        call.sent_at.CopyFrom(sent_at)
    return call


def _parse_json(body: bytes) -> dict:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "body must be a JSON object")
    return value


async def _principal(request: Request, payload_loader):
    """Write key from HTTP Basic, else `writeKey` in the body (checked before parsing when possible)."""
    key = auth.basic_user(request)
    if key:
        principal = await auth.write_key(request, key)
        return principal, payload_loader()
    payload = payload_loader()
    body_key = payload.get("writeKey")
    return await auth.write_key(request, body_key if isinstance(body_key, str) else None), payload


async def _ingest(request: Request, workspace_id: str, calls: list[pb.TrackingCall],
                  rejected: list[dict] = ()) -> pb.IngestReply:
    """Stores the calls; `rejected` (refused here as malformed) only travel as counts by
    field for the data-quality view."""
    by_field: dict[str, int] = {}
    for refused in rejected:
        by_field[refused["field"] or "call"] = by_field.get(refused["field"] or "call", 0) + 1
    return await rpc(request).profile.Ingest(
        pb.IngestRequest(context=common_pb2.RequestContext(workspace_id=workspace_id), calls=calls,
                         rejected_before=by_field))


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


_CALL_DOC = {
    "type": "object", "additionalProperties": True,
    "description": "A Segment-spec call. userId or anonymousId is required (alias: userId and previousId).",
    "properties": {
        "type": {"type": "string", "enum": list(CALL_TYPES)},
        "messageId": {"type": "string"}, "userId": {"type": "string"}, "anonymousId": {"type": "string"},
        "event": {"type": "string"}, "name": {"type": "string"}, "groupId": {"type": "string"},
        "previousId": {"type": "string"}, "properties": {"type": "object"}, "traits": {"type": "object"},
        "context": {"type": "object"}, "integrations": {"type": "object"},
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string"},
    },
}
_BATCH_DOC = {"type": "object", "required": ["batch"], "properties": {
    "batch": {"type": "array", "items": _CALL_DOC},
    "sentAt": {"type": "string", "format": "date-time"}, "writeKey": {"type": "string"}}}


def _doc(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {kind: {"schema": schema}
                                                          for kind in ("application/json", "text/plain")}}}


def _single_route(call_type: str):
    async def handler(request: Request) -> dict:
        settings = request.app.state.settings
        body = await read_body(request, settings.max_event_bytes)
        principal, payload = await _principal(request, lambda: _parse_json(body))
        try:
            call = parse_call(payload, call_type, _now(), None, _client_ip(request), settings.max_event_bytes)
        except CallError as err:
            await _ingest(request, principal.workspace_id, [], [{"field": err.field}])  # counted, not stored
            raise ApiError(422, "invalid_argument", str(err), {"field": err.field}) from None
        result = (await _ingest(request, principal.workspace_id, [call])).results[0]
        if result.outcome == pb.IngestResult.REJECTED:
            raise ApiError(422, "invalid_argument", result.reason, {"field": result.field})
        return {"success": True, "outcome": pb.IngestResult.Outcome.Name(_answered(result.outcome)).lower()}

    handler.__name__ = call_type
    return handler


async def batch(request: Request) -> dict:
    settings = request.app.state.settings
    body = await read_body(request, settings.max_batch_bytes)
    principal, payload = await _principal(request, lambda: _parse_json(body))
    items = payload.get("batch")
    if not isinstance(items, list):
        raise ApiError(422, "invalid_argument", "batch: expected an array of calls", {"field": "batch"})
    received_at = _now()
    try:
        batch_sent_at = _time(payload, "sentAt")
    except CallError as err:
        raise ApiError(422, "invalid_argument", str(err), {"field": err.field}) from None
    rejected, calls, positions = [], [], []
    for index, raw in enumerate(items):
        try:
            calls.append(parse_call(raw, None, received_at, batch_sent_at, _client_ip(request),
                                    settings.max_event_bytes))
            positions.append(index)
        except CallError as err:
            rejected.append({"index": index, "field": err.field, "reason": err.reason})
    stored = duplicates = 0
    if calls or rejected:
        reply = await _ingest(request, principal.workspace_id, calls, rejected)
        for index, result in zip(positions, reply.results, strict=True):
            if _answered(result.outcome) == pb.IngestResult.STORED:
                stored += 1
            elif result.outcome == pb.IngestResult.DUPLICATE:
                duplicates += 1
            else:
                rejected.append({"index": index, "field": result.field, "reason": result.reason})
    rejected.sort(key=lambda r: r["index"])
    if items and not stored and not duplicates:
        raise ApiError(422, "invalid_argument", "every call in the batch was rejected", {"rejected": rejected})
    return {"success": True, "stored": stored, "duplicates": duplicates, "rejected": rejected}


def _answered(outcome: int) -> int:
    """What the SDK is told: a replay of an erased person's call (dropped, and counted in data
    quality) is answered as stored, since the write key is public and must not tell who was erased."""
    return pb.IngestResult.STORED if outcome == pb.IngestResult.ERASED else outcome


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


for _call_type in CALL_TYPES:
    _handler = _single_route(_call_type)
    router.add_api_route(f"/v1/{_call_type}", _handler, methods=["POST"],
                         summary=f"{_call_type.capitalize()} (Segment spec)", openapi_extra=_doc(_CALL_DOC))
    router.add_api_route(f"/v1/{SHORT_PATHS[_call_type]}", _handler, methods=["POST"],
                         summary=f"{_call_type.capitalize()} on the short path analytics.js posts to",
                         openapi_extra=_doc(_CALL_DOC))
router.add_api_route("/v1/batch", batch, methods=["POST"], summary="Batch of calls (Segment spec)",
                     openapi_extra=_doc(_BATCH_DOC))
router.add_api_route("/v1/b", batch, methods=["POST"], openapi_extra=_doc(_BATCH_DOC),
                     summary="Batch on the short path analytics.js (batching), analytics-swift and "
                             "analytics-kotlin post to")
