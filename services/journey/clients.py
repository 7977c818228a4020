"""The journey service's calls to the other services: dispatch sends (live and dry-run),
segment conditions and references, profile trait updates. Live runs' Effects are here."""

from datetime import datetime

import grpc
import orjson

from kit.errors import FailedPrecondition, InvalidArgument
from kit.grpc_channels import channel
from kit.transport import timestamp
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from nudge.profile.v1 import profile_pb2, profile_pb2_grpc
from nudge.segment.v1 import segment_pb2, segment_pb2_grpc
from services.journey.definition import Condition, Send, UpdateTrait
from services.journey.engine import RunState, SendOutcome

ACTOR = "service:journey"
# Answers that will not change on a retry: the send is recorded as failed and the run moves on.
_FINAL = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)


def _context(workspace_id: str) -> common_pb2.RequestContext:
    return common_pb2.RequestContext(workspace_id=workspace_id, actor=ACTOR)


def _outcome_of(delivery, template_id: str) -> SendOutcome:
    return SendOutcome(
        status=delivery.status, channel=delivery.channel, template_id=template_id, reason=delivery.reason,
        rule=delivery.rule, delivery_id=delivery.id,
        deferred_until=delivery.deferred_until.ToDatetime().astimezone() if delivery.HasField("deferred_until") else None,
        next_allowed_at=(delivery.next_allowed_at.ToDatetime().astimezone()
                         if delivery.HasField("next_allowed_at") else None))


def _variables(run: RunState) -> str:
    return orjson.dumps(run.send_variables()).decode()


class Platform:
    """gRPC clients of dispatch, segment and profile, shared by every run of the process."""

    def __init__(self, dispatch_addr: str, segment_addr: str, profile_addr: str, timeout: float = 10.0) -> None:
        self.channels = [channel(a) for a in (dispatch_addr, segment_addr, profile_addr)]
        self.dispatch = dispatch_pb2_grpc.DispatchServiceStub(self.channels[0])
        self.segment = segment_pb2_grpc.SegmentServiceStub(self.channels[1])
        self.profile = profile_pb2_grpc.ProfileServiceStub(self.channels[2])
        self.timeout = timeout

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

    # -- references, checked when a journey is saved ---------------------------------------
    async def check_references(self, workspace_id: str, templates: dict[str, str], segments: dict[str, str]) -> None:
        """Every template and segment exists; `templates`/`segments`: id → the field naming it."""
        for kind, refs, call, request in (
                ("template", templates, self.dispatch.GetTemplate, dispatch_pb2.GetTemplateRequest),
                ("segment", segments, self.segment.GetSegment, segment_pb2.GetSegmentRequest)):
            for ref, field in refs.items():
                try:
                    await call(request(context=_context(workspace_id), id=ref), timeout=self.timeout)
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.NOT_FOUND:
                        raise InvalidArgument(f"{field}: unknown {kind} {ref!r}", field=field) from None
                    raise FailedPrecondition(f"{field}: cannot check {kind} {ref!r}: {err.details()}",
                                             field=field) from None

    async def template_variables(self, workspace_id: str, template_id: str, field: str) -> list[str]:
        """What the template's latest version reads (`event.seq`, `journey.run_id`, …)."""
        try:
            reply = await self.dispatch.GetTemplate(dispatch_pb2.GetTemplateRequest(
                context=_context(workspace_id), id=template_id), timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise InvalidArgument(f"{field}: unknown template {template_id!r}", field=field) from None
            raise FailedPrecondition(f"{field}: cannot check template {template_id!r}: {err.details()}",
                                     field=field) from None
        return list(reply.variables)

    # -- sends -------------------------------------------------------------------------------
    async def send(self, run: RunState, node_id: str, node: Send, key: str) -> SendOutcome:
        try:
            delivery = await self.dispatch.Send(dispatch_pb2.SendRequest(
                context=_context(run.workspace_id), idempotency_key=key, profile_id=run.profile_id,
                channels=list(node.channels), template_id=node.template_id, advertising=node.advertising,
                transactional=node.transactional, order=node.order, journey_id=run.journey_id, node_id=node_id,
                journey_version=run.version, variant=run.variant,
                variables_json=_variables(run)), timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() in _FINAL:
                return SendOutcome("failed", template_id=node.template_id, reason=err.details() or "",
                                   rule=f"dispatch:{err.code().name.lower()}")
            raise  # dispatch unreachable: the step is retried with the same key
        return _outcome_of(delivery, node.template_id)

    async def dry_send(self, simulation_id: str, at: datetime, person: dict, node: Send, variables: dict,
                       workspace_id: str) -> SendOutcome:
        """`variables`: the simulated run's (RunState.send_variables), as a live send's."""
        try:
            delivery = await self.dispatch.Send(dispatch_pb2.SendRequest(
                context=_context(workspace_id), idempotency_key=f"{simulation_id}:{at.isoformat()}",
                profile_id="synthetic", channels=list(node.channels), template_id=node.template_id,
                advertising=node.advertising, transactional=node.transactional, order=node.order,
                variables_json=orjson.dumps(variables).decode(),
                simulation=dispatch_pb2.Simulation(id=simulation_id, at=timestamp(at),
                                                   person_json=orjson.dumps(person).decode())),
                timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(err.details() or "invalid simulation", field="profile") from None
            if err.code() in _FINAL:
                return SendOutcome("failed", template_id=node.template_id, reason=err.details() or "")
            raise
        return _outcome_of(delivery, node.template_id)

    # -- conditions ------------------------------------------------------------------------
    async def condition(self, run: RunState, rule_tree: object) -> bool:
        """The rule for the profile now, counting only events since the run entered."""
        try:
            reply = await self.segment.Explain(segment_pb2.ExplainRequest(
                context=_context(run.workspace_id), rules_json=orjson.dumps(rule_tree).decode(),
                profile_id=run.profile_id, events_since=timestamp(run.entered_at)), timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:  # no events of this profile yet
                return False
            raise
        return reply.member

    # -- traits ----------------------------------------------------------------------------
    async def update_trait(self, run: RunState, node: UpdateTrait, key: str, at: datetime) -> None:
        """An identify call for the profile at the step's moment `at`, deduplicated by the
        profile service on `key` (a replayed step sends the same call)."""
        profile = await self.profile.GetProfile(profile_pb2.GetProfileRequest(
            context=_context(run.workspace_id), profile_id=run.profile_id), timeout=self.timeout)
        ids = {i.type: i.value for i in profile.identities}
        call = profile_pb2.TrackingCall(type="identify", message_id=key, user_id=ids.get("user_id", ""),
                                        anonymous_id="" if "user_id" in ids else ids.get("anonymous_id", ""),
                                        traits_json=orjson.dumps({node.trait: node.value}).decode(),
                                        received_at=timestamp(at))
        await self.profile.Ingest(profile_pb2.IngestRequest(context=_context(run.workspace_id), calls=[call]),
                                  timeout=self.timeout)

    async def members_page(self, workspace_id: str, segment_id: str, cursor: str, size: int) -> tuple[list[str], str]:
        reply = await self.segment.ListMembers(segment_pb2.ListMembersRequest(
            context=_context(workspace_id), id=segment_id, page=common_pb2.PageRequest(size=size, cursor=cursor)),
            timeout=self.timeout)
        return [m.profile_id for m in reply.members], reply.next_cursor


class LiveEffects:
    """Effects of live runs in one batch: traits from the service's copy, the rest remote."""

    def __init__(self, platform: Platform, traits: dict[tuple[str, str], dict], definitions: dict) -> None:
        self.platform = platform
        self._traits = traits
        self.definitions = definitions  # (workspace, journey, version) → definition tree

    async def traits(self, run: RunState) -> dict:
        return self._traits.get((run.workspace_id, run.profile_id), {})

    async def send(self, run, node_id, node: Send, key, at) -> SendOutcome:
        return await self.platform.send(run, node_id, node, key)

    async def condition(self, run, node_id, node: Condition, at) -> bool:
        tree = self.definitions[(run.workspace_id, run.journey_id, run.version)]["nodes"][node_id]["rule"]
        return await self.platform.condition(run, tree)

    async def update_trait(self, run, node_id, node: UpdateTrait, key, at) -> None:
        await self.platform.update_trait(run, node, key, at)
