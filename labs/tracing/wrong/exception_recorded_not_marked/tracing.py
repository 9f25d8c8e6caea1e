"""Tracing for the shop's services: each one sends its spans to the trace backend, and every
span of one request, in every service, belongs to one trace.

setup("gateway") returns the tracer a service makes its spans with. The OpenTelemetry SDK reads
where to send them (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and how often from the environment the
harness gives each service. Its default sampler follows the caller's decision (ParentBased).

server_span(...) continues the caller's trace (the W3C traceparent header it sent);
call(...) makes one CLIENT span per outgoing request and passes the trace on in its headers.

Wrong: a call that raises is recorded on its span (record_exception) and returns None,
but the span is not marked ERROR: a reset connection leaves no span of orders in error.
Rejected by: test_3_failures_are_marked_as_errors
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.requests import Request


def setup(service: str) -> trace.Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer(service)


@contextmanager
def server_span(tracer: trace.Tracer, request: Request, route: str) -> Iterator[Span]:
    """The span of one incoming request, a child of the caller's span."""
    caller = propagate.extract(request.headers)
    name = f"{request.method} {route}"
    with tracer.start_as_current_span(name, context=caller, kind=SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("http.route", route)
        yield span


def answered(span: Span, status: int) -> int:
    """Record the status a server span answers with; a 5xx is an error."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    return status


async def call(
    tracer: trace.Tracer, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    """One outgoing request in its own CLIENT span, which the callee's span will be a child
    of: its response, or None when it failed (the span records why). A 5xx marks the span
    as an error."""
    with tracer.start_as_current_span(f"{method} {path}", kind=SpanKind.CLIENT) as span:
        span.set_attribute("http.request.method", method)
        span.set_attribute("server.address", client.base_url.host)
        span.set_attribute("url.full", str(client.base_url.join(path)))
        headers = dict(kwargs.pop("headers", None) or {})
        propagate.inject(headers)
        try:
            response = await client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            span.record_exception(exc)  # the stack trace, on the span, for whoever looks
            return None
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response
