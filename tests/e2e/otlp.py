"""A minimal OTLP/gRPC trace receiver for the end-to-end tests: it keeps every span it is sent,
with the `service.name` of the resource that sent it."""

import contextlib
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.support.waiting import eventually_sync


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str  # 32 lowercase hex digits
    span_id: str
    parent_span_id: str
    name: str
    kind: int


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: "OtlpReceiver") -> None:
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        spans = []
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ReceivedSpan(service, span.trace_id.hex(), span.span_id.hex(),
                                              span.parent_span_id.hex(), span.name, span.kind))
        with self.receiver._lock:
            self.receiver._spans.extend(spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        assert self.port, "could not bind the OTLP receiver"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "OtlpReceiver":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=1).wait()

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def wait_for(self, predicate, timeout: float = 30) -> list[ReceivedSpan]:
        """Polls until predicate(spans) is true or the timeout passes; returns the spans held then
        (the test asserts on them, naming what is missing)."""
        with contextlib.suppress(AssertionError):
            eventually_sync(lambda: predicate(self.spans()), timeout=timeout, interval=0.2)
        return self.spans()
