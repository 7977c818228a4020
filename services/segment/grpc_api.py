"""gRPC transport of the segment service: decode request → call the service → encode reply."""

from datetime import timezone

import orjson

from kit.audit import list_audit
from kit.errors import InvalidArgument
from kit.transport import export_reply, profiles_to_export, timestamp, workspace_of
from nudge.common.v1 import audit_pb2
from nudge.segment.v1 import segment_pb2 as pb
from nudge.segment.v1 import segment_pb2_grpc
from services.segment.models import audit_log
from services.segment.service import SegmentService


class SegmentServicer(segment_pb2_grpc.SegmentServiceServicer):
    def __init__(self, service: SegmentService) -> None:
        self.service = service

    async def CreateSegment(self, request, context) -> pb.Segment:
        return _segment(await self.service.create(workspace_of(request), request.context.actor, request.name,
                                                  request.description, request.rules_json))

    async def UpdateSegment(self, request, context) -> pb.Segment:
        return _segment(await self.service.update(
            workspace_of(request), request.context.actor, request.id,
            request.name if request.HasField("name") else None,
            request.description if request.HasField("description") else None,
            request.rules_json if request.HasField("rules_json") else None))

    async def DeleteSegment(self, request, context) -> pb.DeleteSegmentReply:
        await self.service.delete(workspace_of(request), request.context.actor, request.id)
        return pb.DeleteSegmentReply()

    async def GetSegment(self, request, context) -> pb.Segment:
        return _segment(await self.service.get(workspace_of(request), request.id))

    async def ListSegments(self, request, context) -> pb.ListSegmentsReply:
        rows, cursor = await self.service.list_segments(workspace_of(request), request.page.size, request.page.cursor)
        return pb.ListSegmentsReply(segments=[_segment(r) for r in rows], next_cursor=cursor)

    async def CountMembers(self, request, context) -> pb.CountMembersReply:
        count, segment = await self.service.count(workspace_of(request), request.id)
        return pb.CountMembersReply(count=count, version=segment["version"], backfill=_backfill(segment["backfill"]))

    async def ListMembers(self, request, context) -> pb.ListMembersReply:
        rows, cursor = await self.service.members(workspace_of(request), request.context.actor, request.id,
                                                  request.page.size, request.page.cursor)
        return pb.ListMembersReply(members=[_member(r) for r in rows], next_cursor=cursor)

    async def ExportMembers(self, request, context):
        cursor, action = "", "segment.members.export"  # one audit row for the whole export
        while True:
            rows, cursor = await self.service.members(workspace_of(request), request.context.actor, request.id,
                                                      5000, cursor, action)
            for row in rows:
                yield _member(row)
            if not cursor:
                return
            action = None

    async def IsMember(self, request, context) -> pb.IsMemberReply:
        if not request.profile_id:
            raise InvalidArgument("profile_id: required", field="profile_id")
        member, profile_id = await self.service.is_member(workspace_of(request), request.context.actor, request.id,
                                                          request.profile_id)
        return pb.IsMemberReply(member=member, profile_id=profile_id)

    async def Preview(self, request, context) -> pb.PreviewReply:
        count, total, sample = await self.service.preview(workspace_of(request), request.context.actor,
                                                          request.rules_json, request.sample_size)
        return pb.PreviewReply(count=count, total=total, sample_profile_ids=sample)

    async def Explain(self, request, context) -> pb.ExplainReply:
        if not request.profile_id:
            raise InvalidArgument("profile_id: required", field="profile_id")
        if bool(request.id) == bool(request.rules_json):
            raise InvalidArgument("id: give either a segment id or rules_json", field="id")
        since = request.events_since.ToDatetime(timezone.utc) if request.HasField("events_since") else None
        found = await self.service.explain(workspace_of(request), request.context.actor, request.id,
                                           request.rules_json, request.profile_id, since)
        reply = pb.ExplainReply(member=found["member"], profile_id=found["profile_id"], conditions=[
            pb.ConditionResult(path=c["path"], condition=orjson.dumps(c["condition"]).decode(),
                               satisfied=c["satisfied"], reason=c["reason"],
                               value_json=orjson.dumps(c["value"]).decode() if c["value"] is not None else "")
            for c in found["conditions"]])
        if found["next_change"]:
            reply.next_change.CopyFrom(timestamp(found["next_change"]))
        return reply

    async def ExportProfile(self, request, context):
        return export_reply(await self.service.export_profile(workspace_of(request), profiles_to_export(request)))

    async def GetRfmSettings(self, request, context) -> pb.RfmSettings:
        return pb.RfmSettings(**await self.service.rfm_settings(workspace_of(request)))

    async def SetRfmSettings(self, request, context) -> pb.RfmSettings:
        return pb.RfmSettings(**await self.service.set_rfm_settings(
            workspace_of(request), request.context.actor, request.settings.order_event,
            request.settings.revenue_property))

    async def ListAudit(self, request, context) -> audit_pb2.ListAuditReply:
        return await list_audit(self.service.sessions, audit_log, request)


def _segment(row: dict) -> pb.Segment:
    return pb.Segment(id=row["id"], name=row["name"], description=row["description"],
                      rules_json=orjson.dumps(row["rules"]).decode(), version=row["version"],
                      created_at=timestamp(row["created_at"]), updated_at=timestamp(row["updated_at"]),
                      backfill=_backfill(row["backfill"]))


def _backfill(backfill: dict) -> pb.Backfill:
    reply = pb.Backfill(state=backfill["state"], done=backfill["done"], total=backfill["total"],
                        version=backfill["version"], started_at=timestamp(backfill["started_at"]))
    if backfill["finished_at"]:
        reply.finished_at.CopyFrom(timestamp(backfill["finished_at"]))
    return reply


def _member(row) -> pb.Member:
    return pb.Member(profile_id=row.profile_id, since=timestamp(row.since), version=row.version)
