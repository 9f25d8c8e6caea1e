"""Traces for the labs that need them: a real Jaeger per run (OTLP in, the query API out), its
configuration, and the client checks query it with."""

from harness.tracing.client import JaegerClient, JaegerError, Span, Trace
from harness.tracing.config import TracingSpec
from harness.tracing.program import Jaeger, find_jaeger, install_jaeger

__all__ = [
    "Jaeger",
    "JaegerClient",
    "JaegerError",
    "Span",
    "Trace",
    "TracingSpec",
    "find_jaeger",
    "install_jaeger",
]
