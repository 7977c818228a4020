"""gRPC transport of the dispatch service: decode request → call the service → encode reply."""

from datetime import datetime, timezone

import orjson

from kit.audit import list_audit
from kit.transport import (export_reply, json_argument, json_object_argument, profiles_to_export, timestamp,
                           workspace_of)
from nudge.common.v1 import audit_pb2
from nudge.dispatch.v1 import dispatch_pb2 as pb
from nudge.dispatch.v1 import dispatch_pb2_grpc
from services.dispatch import templates
from services.dispatch.models import audit_log
from services.dispatch.outcomes import FIRST_ALLOWED
from services.dispatch.service import DispatchService, SendSpec
from services.dispatch.simulation import Simulation


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(self, service: DispatchService) -> None:
        self.service = service

    async def Send(self, request, context) -> pb.Delivery:
        return _delivery(await self._send(workspace_of(request), request.context.actor, _spec(request), request))

    async def SendBatch(self, request, context) -> pb.SendBatchReply:
        workspace_id = workspace_of(request)
        specs = [_spec(s, f"sends[{i}].") for i, s in enumerate(request.sends)]
        return pb.SendBatchReply(deliveries=[_delivery(await self._send(workspace_id, request.context.actor, spec, s))
                                             for spec, s in zip(specs, request.sends)])

    async def _send(self, workspace_id: str, actor: str, spec: SendSpec, request: pb.SendRequest) -> dict:
        """A send, or its dry run when the request carries a simulation."""
        if not request.HasField("simulation"):
            return await self.service.send(workspace_id, actor, spec)
        return await self.service.simulate(workspace_id, spec, _simulation(request.simulation))

    async def PutTemplate(self, request, context) -> pb.Template:
        return _template(await self.service.put_template(workspace_of(request), request.context.actor, request.id,
                                                         request.name, request.channels_json))

    async def GetTemplate(self, request, context) -> pb.Template:
        return _template(await self.service.template(workspace_of(request), request.id, request.version))

    async def DeleteTemplate(self, request, context) -> pb.DeleteTemplateReply:
        await self.service.delete_template(workspace_of(request), request.context.actor, request.id)
        return pb.DeleteTemplateReply()

    async def ListTemplates(self, request, context) -> pb.ListTemplatesReply:
        return pb.ListTemplatesReply(templates=[_template(t) for t in
                                                await self.service.list_templates(workspace_of(request))])

    async def PutChannelConfig(self, request, context) -> pb.ChannelConfig:
        return _config(await self.service.put_channel_config(workspace_of(request), request.context.actor,
                                                             request.channel, request.provider, request.config_json))

    async def ListChannelConfigs(self, request, context) -> pb.ListChannelConfigsReply:
        return pb.ListChannelConfigsReply(configs=[_config(c) for c in
                                                   await self.service.channel_configs(workspace_of(request))])

    async def GetPolicy(self, request, context) -> pb.Policy:
        return pb.Policy(policy_json=orjson.dumps(await self.service.policy(workspace_of(request))).decode())

    async def SetPolicy(self, request, context) -> pb.Policy:
        policy = await self.service.set_policy(workspace_of(request), request.context.actor, request.policy_json,
                                               request.merge_patch)
        return pb.Policy(policy_json=orjson.dumps(policy).decode())

    async def GetDelivery(self, request, context) -> pb.Delivery:
        return _delivery(await self.service.delivery(workspace_of(request), request.id, request.context.actor))

    async def ListDeliveries(self, request, context) -> pb.ListDeliveriesReply:
        rows, cursor = await self.service.deliveries(workspace_of(request), request.context.actor, request.profile_id,
                                                     request.page.size, request.page.cursor)
        return pb.ListDeliveriesReply(deliveries=[_delivery(r) for r in rows], next_cursor=cursor)

    async def ExportProfile(self, request, context):
        return export_reply(await self.service.export_profile(workspace_of(request), profiles_to_export(request)))

    async def FetchInApp(self, request, context) -> pb.FetchInAppReply:
        rows = await self.service.fetch_inapp(workspace_of(request), request.profile_id)
        return pb.FetchInAppReply(messages=[pb.InAppMessage(
            id=r.id, delivery_id=r.delivery_id, title=r.title, body=r.body, url=r.url or "",
            created_at=timestamp(r.created_at)) for r in rows])

    async def MarkInAppSeen(self, request, context) -> pb.MarkInAppSeenReply:
        return pb.MarkInAppSeenReply(marked=await self.service.mark_inapp_seen(
            workspace_of(request), request.profile_id, list(request.ids)))

    async def RecordReceipt(self, request, context) -> pb.RecordReceiptReply:
        payload = json_argument(request.payload_json, "payload")
        return pb.RecordReceiptReply(updated=await self.service.record_receipt(workspace_of(request), request.provider,
                                                                               payload))

    async def RecordEngagement(self, request, context) -> pb.RecordEngagementReply:
        url, delivery_id, recorded = await self.service.record_engagement(
            request.token, request.kind, request.user_agent, request.ip, request.request_id)
        return pb.RecordEngagementReply(url=url or "", delivery_id=delivery_id, recorded=recorded)

    async def CheckEngagementToken(self, request, context) -> pb.CheckEngagementTokenReply:
        claim, row = await self.service.check_token(request.token, request.kind)
        return pb.CheckEngagementTokenReply(delivery_id=row.id, channel=row.channel or "",
                                            category=claim.category or "")

    async def RecordInAppEngagement(self, request, context) -> pb.RecordEngagementReply:
        url, delivery_id, recorded = await self.service.record_inapp_engagement(
            workspace_of(request), request.delivery_id, request.profile_id, request.kind, request.user_agent,
            request.ip, request.request_id)
        return pb.RecordEngagementReply(url=url or "", delivery_id=delivery_id, recorded=recorded)

    async def ListAudit(self, request, context) -> audit_pb2.ListAuditReply:
        return await list_audit(self.service.sessions, audit_log, request)


def _spec(request: pb.SendRequest, prefix: str = "") -> SendSpec:
    variables = json_object_argument(request.variables_json, f"{prefix}variables")
    return SendSpec(idempotency_key=request.idempotency_key, profile_id=request.profile_id,
                    channels=list(request.channels), template_id=request.template_id,
                    advertising=request.advertising, transactional=request.transactional,
                    journey_id=request.journey_id, node_id=request.node_id, variables=variables,
                    journey_version=request.journey_version, variant=request.variant,
                    order=request.order or FIRST_ALLOWED)


def _simulation(run: pb.Simulation) -> Simulation:
    return Simulation(run.id, run.at.ToDatetime(tzinfo=timezone.utc) if run.HasField("at") else None,
                      run.person_json)


def _delivery(row: dict) -> pb.Delivery:
    request = row["request"]
    reply = pb.Delivery(
        id=row["id"], idempotency_key=row["idempotency_key"], profile_id=row["profile_id"], status=row["status"],
        channel=row["channel"] or "", provider=row["provider"] or "",
        provider_message_id=row["provider_message_id"] or "", reason=row["reason"], rule=row["rule"],
        consent_json=orjson.dumps(row["consent"]).decode(), template_id=request["template_id"],
        template_version=row["template_version"] or 0, advertising=request["advertising"],
        journey_id=request["journey_id"], node_id=request["node_id"],
        journey_version=request.get("journey_version", 0), variant=request.get("variant", ""),
        created_at=timestamp(row["created_at"]), updated_at=timestamp(row["updated_at"]),
        attempts=[pb.Attempt(channel=a["channel"], provider=a["provider"], outcome=a["outcome"],
                             reason=a["reason"], at=timestamp(datetime.fromisoformat(a["at"])))
                  for a in row["attempts"]])
    for name in ("deferred_until", "next_allowed_at"):
        if row[name]:
            getattr(reply, name).CopyFrom(timestamp(row[name]))
    return reply


def _template(row) -> pb.Template:
    return pb.Template(id=row.id, name=row.name, version=row.version,
                       channels_json=orjson.dumps(row.channels).decode(), created_at=timestamp(row.created_at),
                       variables=templates.variables_needed(row.channels))


def _config(config: dict) -> pb.ChannelConfig:
    return pb.ChannelConfig(channel=config["channel"], provider=config["provider"],
                            config_json=orjson.dumps(config["config"]).decode(),
                            updated_at=timestamp(config["updated_at"]))
