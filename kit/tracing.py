"""OpenTelemetry: one tracer provider per process, OTLP export when an endpoint is set,
and W3C trace context carried in gRPC metadata (instrumentation) and stream entries (here)."""

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_provider: TracerProvider | None = None


def setup_tracing(service_name: str, otlp_endpoint: str | None,
                  exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the provider and the gRPC, SQLAlchemy and Redis instrumentation (idempotent)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        trace.set_tracer_provider(_provider)
        from opentelemetry.instrumentation.grpc import (
            GrpcAioInstrumentorClient, GrpcAioInstrumentorServer)
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        GrpcAioInstrumentorServer().instrument()
        GrpcAioInstrumentorClient().instrument()
        RedisInstrumentor().instrument()
    if otlp_endpoint and exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)
    if exporter is not None:
        _provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    return _provider


def instrument_engine(engine) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()


def current_trace_headers() -> dict[str, str]:
    """W3C traceparent/tracestate of the active span, to store beside a stream entry."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: dict[str, str]):
    return propagate.extract(headers)

