"""Tracing for the shop's services, wired in once instead of at every call: an ASGI middleware
makes each incoming request's SERVER span, and an httpx transport makes each outgoing
request's CLIENT span and passes the trace on. Handlers never touch a span.

Also correct: spans come from a middleware and an httpx transport, not from helpers called
in the handlers; the status of a SERVER span is read from the answer as it leaves.
"""

import httpx
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def setup(service: str) -> trace.Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer(service)


class TracedApp:
    """A SERVER span per request, a child of the caller's span (its traceparent header)."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        name = f"{scope['method']} {scope['path']}"
        with self.tracer.start_as_current_span(
            name, context=propagate.extract(carrier), kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("http.route", scope["path"])

            async def send_and_note(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_and_note)


class TracedTransport(httpx.AsyncBaseTransport):
    """A CLIENT span around each request the client sends, its context in the headers."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = f"{request.method} {request.url.path}"
        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("url.full", str(request.url))
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            request.headers.update(carrier)
            response = await self.inner.handle_async_request(request)
            await response.aread()  # the whole answer, inside the span
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def traced_client(tracer: trace.Tracer, base_url: str, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=TracedTransport(tracer))
