"""gRPC transport of the journey service: decode request → call the service → encode reply."""

from datetime import datetime, timezone

import orjson

from kit.audit import list_audit
from kit.errors import InvalidArgument
from kit.transport import export_reply, json_object_argument, profiles_to_export, timestamp, workspace_of
from nudge.common.v1 import audit_pb2
from nudge.journey.v1 import journey_pb2 as pb
from nudge.journey.v1 import journey_pb2_grpc
from services.journey.library import StarterLibrary
from services.journey.models import audit_log
from services.journey.service import JourneyService
from services.journey.simulator import MAX_TIMELINE, TimelineEvent


class JourneyServicer(journey_pb2_grpc.JourneyServiceServicer):
    def __init__(self, service: JourneyService) -> None:
        self.service = service
        self.starters = StarterLibrary(service)

    async def CreateJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.create(workspace_of(request), request.context.actor, request.id,
                                                  request.name, request.description, request.definition_json))

    async def UpdateJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.update(
            workspace_of(request), request.context.actor, request.id, request.name,
            request.description if request.HasField("description") else None, request.definition_json))

    async def GetJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.get(workspace_of(request), request.id))

    async def ListJourneys(self, request, context) -> pb.ListJourneysReply:
        rows = await self.service.list_journeys(workspace_of(request), request.status)
        return pb.ListJourneysReply(journeys=[_journey(r) for r in rows])

    async def DeleteJourney(self, request, context) -> pb.DeleteJourneyReply:
        await self.service.delete(workspace_of(request), request.context.actor, request.id)
        return pb.DeleteJourneyReply()

    async def PublishJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.publish(workspace_of(request), request.context.actor, request.id))

    async def PauseJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.pause(workspace_of(request), request.context.actor, request.id))

    async def ResumeJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.resume(workspace_of(request), request.context.actor, request.id))

    async def ArchiveJourney(self, request, context) -> pb.Journey:
        return _journey(await self.service.archive(workspace_of(request), request.context.actor, request.id))

    async def ListVersions(self, request, context) -> pb.ListVersionsReply:
        rows = await self.service.versions(workspace_of(request), request.id)
        return pb.ListVersionsReply(versions=[pb.Version(
            version=r.version, definition_json=orjson.dumps(r.definition).decode(),
            published_at=timestamp(r.published_at)) for r in rows])

    async def ListRuns(self, request, context) -> pb.ListRunsReply:
        rows = await self.service.runs_of(workspace_of(request), request.context.actor, request.profile_id,
                                            request.journey_id)
        return pb.ListRunsReply(runs=[_run(r) for r in rows])

    async def GetRun(self, request, context) -> pb.Run:
        row, steps = await self.service.run(workspace_of(request), request.context.actor, request.id)
        run = _run(row)
        run.steps.extend(pb.Step(seq=s.seq, node_id=s.node_id, kind=s.kind, outcome=s.outcome,
                                 detail_json=orjson.dumps(s.detail).decode(), at=timestamp(s.at)) for s in steps)
        return run

    async def ExportProfile(self, request, context):
        return export_reply(await self.service.export_profile(workspace_of(request), profiles_to_export(request)))

    async def GetStats(self, request, context) -> pb.JourneyStats:
        stats = await self.service.stats(workspace_of(request), request.id)
        return pb.JourneyStats(
            journey_id=request.id, entered=stats["entered"], active=stats["active"], converted=stats["converted"],
            exited=stats["exited"], completed=stats["completed"],
            nodes=[pb.NodeStats(node_id=node_id, reached=n["reached"], waiting=n["waiting"], outcomes=n["outcomes"])
                   for node_id, n in sorted(stats["nodes"].items())])

    async def Simulate(self, request, context) -> pb.SimulateReply:
        if len(request.timeline) > MAX_TIMELINE:
            raise InvalidArgument(f"timeline: at most {MAX_TIMELINE} events", field="timeline")
        timeline = []
        for i, item in enumerate(request.timeline):
            if not item.event:
                raise InvalidArgument(f"timeline[{i}].event: required", field=f"timeline[{i}].event")
            if not item.HasField("at"):
                raise InvalidArgument(f"timeline[{i}].at: required", field=f"timeline[{i}].at")
            properties = json_object_argument(item.properties_json, f"timeline[{i}].properties")
            timeline.append(TimelineEvent(item.event, _time(item.at), properties))
        result = await self.service.simulate(
            workspace_of(request), request.id, request.definition_json, request.profile_json,
            _time(request.start_at) if request.HasField("start_at") else None, timeline,
            _time(request.until) if request.HasField("until") else None)
        reply = pb.SimulateReply(end_status=result.end_status, end_reason=result.end_reason)
        if result.ended_at:
            reply.ended_at.CopyFrom(timestamp(result.ended_at))
        for step in result.steps:
            detail = step.detail
            reply.steps.append(pb.SimulatedStep(
                at=timestamp(step.at), node_id=step.node_id, kind=step.kind, outcome=step.outcome,
                channel=detail.get("channel", ""), template_id=detail.get("template_id", ""),
                reason=detail.get("reason", "") or detail.get("rule", ""), detail_json=orjson.dumps(detail).decode()))
        return reply

    async def FindUsages(self, request, context) -> pb.FindUsagesReply:
        rows = await self.service.find_usages(workspace_of(request), request.segment_id, request.template_id)
        return pb.FindUsagesReply(journeys=[_journey(r, definition=False) for r in rows])

    async def ListStarters(self, request, context) -> pb.ListStartersReply:
        workspace_of(request)
        return pb.ListStartersReply(starters=[_starter(s) for s in self.starters.list()])

    async def GetStarter(self, request, context) -> pb.JourneyStarter:
        workspace_of(request)
        return _starter(self.starters.get(request.id))

    async def CreateFromStarter(self, request, context) -> pb.Journey:
        return _journey(await self.starters.create(
            workspace_of(request), request.context.actor, request.id, request.name, request.description,
            request.starter, dict(request.templates), dict(request.segments)))

    async def ListAudit(self, request, context) -> audit_pb2.ListAuditReply:
        return await list_audit(self.service.sessions, audit_log, request)


def _starter(starter: dict) -> pb.JourneyStarter:
    return pb.JourneyStarter(
        id=starter["id"], name=starter["name"], description=starter["description"], source=starter["source"],
        templates=[pb.StarterTemplateSlot(slot=t["slot"], description=t["description"], channels=t["channels"],
                                          advertising=t["advertising"]) for t in starter["templates"]],
        segments=[pb.StarterSegmentSlot(slot=s["slot"], description=s["description"],
                                        rules_json=orjson.dumps(s["rules"]).decode()) for s in starter["segments"]],
        definition_json=orjson.dumps(starter["definition"]).decode())


def _time(stamp):
    return stamp.ToDatetime(tzinfo=timezone.utc)


def _journey(row: dict, definition: bool = True) -> pb.Journey:
    return pb.Journey(id=row["id"], name=row["name"], description=row["description"], status=row["status"],
                      version=row["version"],
                      definition_json=orjson.dumps(row["definition"]).decode() if definition else "",
                      created_at=timestamp(row["created_at"]), updated_at=timestamp(row["updated_at"]))


def _run(row) -> pb.Run:
    run = pb.Run(id=str(row.id), journey_id=row.journey_id, version=row.version, profile_id=row.profile_id,
                 status=row.status, node_id=row.node_id, variant=row.variant, end_reason=row.end_reason,
                 entered_at=timestamp(row.entered_at))
    if row.ended_at:
        run.ended_at.CopyFrom(timestamp(row.ended_at))
    if row.wait:
        run.next_at.CopyFrom(timestamp(datetime.fromisoformat(row.wait["until"])))
    return run
