"""Tracing for the shop's services: each one sends its spans to the trace backend.

setup("gateway") returns the tracer a service makes its spans with. The OpenTelemetry SDK reads
where to send them (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and how often from the environment the
harness gives each service.
"""

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def setup(service: str) -> trace.Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer(service)
