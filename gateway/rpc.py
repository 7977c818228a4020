"""Calls from the gateway to a service: the typed stubs (`rpc(request).dispatch.Send(...)`,
so go-to-definition reaches the generated method), the request context every call carries
(workspace and the key that made it, for the audit log) and the deadline every call gets.

A failed call raises `grpc.aio.AioRpcError`; `errors.install` maps it to the error shape in one place."""

from dataclasses import dataclass

import grpc
from fastapi import Request
from grpc_health.v1 import health_pb2_grpc

from gateway.settings import GatewaySettings
from gateway.workspaces import Principal
from kit.grpc_channels import channel as open_channel
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2_grpc
from nudge.journey.v1 import journey_pb2_grpc
from nudge.metrics.v1 import metrics_pb2_grpc
from nudge.profile.v1 import profile_pb2_grpc
from nudge.segment.v1 import segment_pb2_grpc


@dataclass(frozen=True)
class Services:
    """The gRPC client of each service the gateway calls, on one channel per service."""
    profile: profile_pb2_grpc.ProfileServiceStub
    segment: segment_pb2_grpc.SegmentServiceStub
    dispatch: dispatch_pb2_grpc.DispatchServiceStub
    journey: journey_pb2_grpc.JourneyServiceStub
    metrics: metrics_pb2_grpc.MetricsServiceStub


def rpc(request: Request) -> Services:
    return request.app.state.services


class Deadline(grpc.aio.UnaryUnaryClientInterceptor):
    """Gives a call without a timeout of its own the gateway's: a slow service answers 503
    (DEADLINE_EXCEEDED) instead of holding the HTTP request. The gateway only makes unary calls."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        if client_call_details.timeout is None:
            client_call_details = client_call_details._replace(timeout=self.seconds)
        return await continuation(client_call_details, request)


class Channels:
    """A channel to each service (with the deadline), its clients and its health client."""

    def __init__(self, settings: GatewaySettings) -> None:
        def channel(address: str) -> grpc.aio.Channel:
            return open_channel(address, interceptors=[Deadline(settings.rpc_timeout_seconds)])

        self.by_name = {"profile": channel(settings.profile_addr), "segment": channel(settings.segment_addr),
                        "dispatch": channel(settings.dispatch_addr), "journey": channel(settings.journey_addr),
                        "metrics": channel(settings.metrics_addr)}
        c = self.by_name
        self.services = Services(profile=profile_pb2_grpc.ProfileServiceStub(c["profile"]),
                                 segment=segment_pb2_grpc.SegmentServiceStub(c["segment"]),
                                 dispatch=dispatch_pb2_grpc.DispatchServiceStub(c["dispatch"]),
                                 journey=journey_pb2_grpc.JourneyServiceStub(c["journey"]),
                                 metrics=metrics_pb2_grpc.MetricsServiceStub(c["metrics"]))
        self.health = {name: health_pb2_grpc.HealthStub(ch) for name, ch in c.items()}

    async def close(self) -> None:
        for ch in reversed(list(self.by_name.values())):
            await ch.close()


def context_of(principal: Principal) -> common_pb2.RequestContext:
    return common_pb2.RequestContext(workspace_id=principal.workspace_id, actor=principal.key_id)


def time_json(message, name: str) -> str | None:
    """An optional Timestamp field as JSON text, or null when unset."""
    return getattr(message, name).ToJsonString() if message.HasField(name) else None
