"""gRPC transport of the profile service: decode request → call the service → encode reply."""

from datetime import datetime, timezone

import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from kit.audit import list_audit
from kit.errors import InvalidArgument
from kit.transport import json_object_argument, timestamp, workspace_of
from nudge.common.v1 import audit_pb2
from nudge.profile.v1 import profile_pb2 as pb
from nudge.profile.v1 import profile_pb2_grpc
from services.profile.calls import CALL_TYPES, Call
from services.profile.models import audit_log
from services.profile.service import DUPLICATE, ERASED, REJECTED, STORED, ProfileService, ProfileView

_OUTCOMES = {STORED: pb.IngestResult.STORED, DUPLICATE: pb.IngestResult.DUPLICATE,
             REJECTED: pb.IngestResult.REJECTED, ERASED: pb.IngestResult.ERASED}


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, service: ProfileService) -> None:
        self.service = service

    async def Ingest(self, request: pb.IngestRequest, context: aio.ServicerContext) -> pb.IngestReply:
        workspace_id = workspace_of(request)
        results = await self.service.ingest(workspace_id, [_call(c, i) for i, c in enumerate(request.calls)],
                                            dict(request.rejected_before))
        return pb.IngestReply(results=[
            pb.IngestResult(outcome=_OUTCOMES[r.outcome], profile_id=r.profile_id, event_id=r.event_id,
                            field=r.field, reason=r.reason) for r in results])

    async def GetProfile(self, request, context) -> pb.Profile:
        view = await self.service.get_profile(workspace_of(request), request.context.actor, request.profile_id)
        return _profile(view)

    async def LookupProfiles(self, request, context) -> pb.LookupProfilesReply:
        views = await self.service.lookup(workspace_of(request), request.context.actor,
                                          request.identifier_type, request.value)
        return pb.LookupProfilesReply(profiles=[_profile(v) for v in views])

    async def ListEvents(self, request, context) -> pb.ListEventsReply:
        rows, cursor = await self.service.list_events(
            workspace_of(request), request.context.actor, request.profile_id, request.page.size, request.page.cursor)
        return pb.ListEventsReply(next_cursor=cursor, events=[
            pb.Event(id=str(r.id), profile_id=str(r.profile_id), timestamp=timestamp(r.timestamp),
                     call=_call_message(r.call)) for r in rows])

    async def UpdateConsent(self, request, context) -> pb.Profile:
        changes = [(c.purpose, c.granted, c.at.ToDatetime(timezone.utc) if c.HasField("at") else None, c.source)
                   for c in request.changes]
        view = await self.service.update_consent(workspace_of(request), request.context.actor,
                                                 request.profile_id, changes)
        return _profile(view)

    async def ExportProfile(self, request, context) -> pb.ExportProfileReply:
        export = await self.service.export(workspace_of(request), request.context.actor, request.profile_id)
        return pb.ExportProfileReply(export_json=orjson.dumps(export).decode())

    async def DeleteProfile(self, request, context) -> pb.DeleteProfileReply:
        erased = await self.service.delete(workspace_of(request), request.context.actor, request.profile_id)
        return pb.DeleteProfileReply(events_erased=erased)

    async def GetIdentityPolicy(self, request, context) -> pb.IdentityPolicy:
        return pb.IdentityPolicy(unique_identifiers=await self.service.identity_policy(workspace_of(request)))

    async def SetIdentityPolicy(self, request, context) -> pb.IdentityPolicy:
        unique = await self.service.set_identity_policy(
            workspace_of(request), request.context.actor, list(request.policy.unique_identifiers))
        return pb.IdentityPolicy(unique_identifiers=unique)

    async def ListAudit(self, request, context) -> audit_pb2.ListAuditReply:
        return await list_audit(self.service.sessions, audit_log, request)


def _call(message: pb.TrackingCall, index: int) -> Call:
    def when(name):
        return getattr(message, name).ToDatetime(timezone.utc) if message.HasField(name) else None

    received_at = when("received_at")
    if received_at is None:
        raise InvalidArgument(f"calls[{index}].received_at is required", field=f"calls[{index}].received_at")
    if message.type not in CALL_TYPES:
        raise InvalidArgument(f"calls[{index}].type: expected one of {', '.join(CALL_TYPES)}",
                              field=f"calls[{index}].type")
    if not message.message_id:
        raise InvalidArgument(f"calls[{index}].message_id is required", field=f"calls[{index}].message_id")
    return Call(
        type=message.type, message_id=message.message_id, received_at=received_at,
        user_id=message.user_id, anonymous_id=message.anonymous_id, event=message.event,
        name=message.name, group_id=message.group_id, previous_id=message.previous_id,
        properties=json_object_argument(message.properties_json, f"calls[{index}].properties"),
        traits=json_object_argument(message.traits_json, f"calls[{index}].traits"),
        context=json_object_argument(message.context_json, f"calls[{index}].context"),
        integrations=json_object_argument(message.integrations_json, f"calls[{index}].integrations"),
        original_timestamp=when("original_timestamp"), sent_at=when("sent_at"))


def _call_message(record: dict) -> pb.TrackingCall:
    def stamp(key):
        return timestamp(datetime.fromisoformat(record[key])) if record.get(key) else None

    return pb.TrackingCall(
        type=record["type"], message_id=record["messageId"], user_id=record.get("userId", ""),
        anonymous_id=record.get("anonymousId", ""), event=record.get("event", ""),
        name=record.get("name", ""), group_id=record.get("groupId", ""),
        previous_id=record.get("previousId", ""),
        properties_json=orjson.dumps(record.get("properties", {})).decode(),
        traits_json=orjson.dumps(record.get("traits", {})).decode(),
        context_json=orjson.dumps(record.get("context", {})).decode(),
        integrations_json=orjson.dumps(record.get("integrations", {})).decode(),
        original_timestamp=stamp("originalTimestamp"), sent_at=stamp("sentAt"),
        received_at=stamp("receivedAt"))


def _profile(view: ProfileView) -> pb.Profile:
    row = view.row
    message = pb.Profile(
        id=str(row["id"]), traits_json=orjson.dumps(row["traits"]).decode(),
        created_at=timestamp(row["created_at"]), merged_ids=[str(i) for i in view.merged_ids],
        identities=[pb.Identity(type=t, value=v, first_seen=timestamp(f)) for t, v, f in view.identities],
        consent=[pb.ConsentState(purpose=p, granted=s["granted"], source=s["source"],
                                 at=_ts_text(s["at"])) for p, s in sorted(row["consent"].items())])
    if row["last_seen_at"]:
        message.last_seen_at.CopyFrom(timestamp(row["last_seen_at"]))
    return message


def _ts_text(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp
