"""gRPC transport of the metrics service: decode request → call the service → encode reply."""

from datetime import timezone

from kit.audit import list_audit
from kit.transport import export_reply, profiles_to_export, timestamp, workspace_of
from nudge.common.v1 import audit_pb2
from nudge.metrics.v1 import metrics_pb2 as pb
from nudge.metrics.v1 import metrics_pb2_grpc
from services.metrics.models import audit_log
from services.metrics.service import MetricsService


class MetricsServicer(metrics_pb2_grpc.MetricsServiceServicer):
    def __init__(self, service: MetricsService) -> None:
        self.service = service

    async def GetStats(self, request, context) -> pb.StatsReply:
        f = request.filter
        filters = {"journey_id": f.journey_id, "journey_version": f.journey_version, "node_id": f.node_id,
                   "variant": f.variant, "channel": f.channel, "template_id": f.template_id,
                   "from": _time(f, "from"), "until": _time(f, "until")}
        rows = await self.service.stats(workspace_of(request), filters, list(request.group_by))
        return pb.StatsReply(rows=[pb.StatsRow(group=r["group"], counts=pb.Counts(**r["counts"])) for r in rows])

    async def GetExperiment(self, request, context) -> pb.ExperimentReply:
        variants = await self.service.experiment(workspace_of(request), request.journey_id, request.journey_version,
                                                 request.control, request.confidence)
        return pb.ExperimentReply(variants=[pb.VariantResult(
            variant=v["variant"], runs=v["runs"], conversions=v["conversions"], rate=v["rate"], revenue=v["revenue"],
            comparisons=[pb.Comparison(**c.__dict__) for c in v["comparisons"]]) for v in variants])

    async def GetFunnel(self, request, context) -> pb.FunnelReply:
        stages = await self.service.funnel(workspace_of(request), request.journey_id, request.journey_version)
        return pb.FunnelReply(stages=[pb.FunnelStage(**s) for s in stages])

    async def GetCustomerValue(self, request, context) -> pb.CustomerValue:
        value = await self.service.customer_value(workspace_of(request), request.context.actor, request.profile_id)
        reply = pb.CustomerValue(**{k: v for k, v in value.items() if not k.endswith("_at")})
        for key in ("first_order_at", "last_order_at"):
            if value[key] is not None:
                getattr(reply, key).CopyFrom(timestamp(value[key]))
        return reply

    async def GetValueDistribution(self, request, context) -> pb.ValueDistributionReply:
        found = await self.service.distribution(workspace_of(request))
        return pb.ValueDistributionReply(**{k: ([pb.Bucket(**b) for b in v] if isinstance(v, list) else v)
                                            for k, v in found.items()})

    async def GetDataQuality(self, request, context) -> pb.DataQualityReply:
        days = await self.service.data_quality(workspace_of(request), _time(request, "from"), _time(request, "until"))
        return pb.DataQualityReply(days=[pb.DataQualityDay(**d) for d in days])

    async def ExportProfile(self, request, context):
        return export_reply(await self.service.export_profile(workspace_of(request), profiles_to_export(request)))

    async def GetSettings(self, request, context) -> pb.Settings:
        return pb.Settings(**await self.service.get_settings(workspace_of(request)))

    async def SetSettings(self, request, context) -> pb.Settings:
        s = request.settings
        return pb.Settings(**await self.service.set_settings(workspace_of(request), request.context.actor,
                                                             s.order_event, s.revenue_property, s.attribution_window))

    async def ListAudit(self, request, context) -> audit_pb2.ListAuditReply:
        return await list_audit(self.service.sessions, audit_log, request)


def _time(message, field: str):
    return getattr(message, field).ToDatetime(tzinfo=timezone.utc) if message.HasField(field) else None
