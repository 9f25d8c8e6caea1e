"""The Jaeger configuration of one run: OTLP over HTTP in, spans kept in memory, the query API
out, each on the run's own port, and nothing else listening (Jaeger's defaults bind fixed
ports: 4317, 4318, 16685, 16686, 8888, which two runs at once would fight over)."""

from __future__ import annotations

import json
from dataclasses import dataclass

OTLP_PATH = "/v1/traces"
MAX_TRACES = 200_000  # far beyond any lab's run; memory is freed when the run ends


@dataclass(frozen=True)
class TracingSpec:
    """A lab's `[tracing]` table: the services that export spans to the run's Jaeger."""

    services: tuple[str, ...] = ()


def render(listen_host: str, otlp_port: int, query_port: int) -> str:
    """Jaeger's configuration (an OpenTelemetry Collector file). JSON is valid YAML, and writing
    it with json.dumps leaves nothing to quote by hand. The query API's gRPC side, which the
    harness does not use, takes a port the kernel picks."""
    config = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": [],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "metrics": {"level": "none", "readers": []},
                "logs": {"level": "warn"},
            },
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": MAX_TRACES}}}},
            "jaeger_query": {
                "storage": {"traces": "memory"},
                "http": {"endpoint": f"{listen_host}:{query_port}"},
                "grpc": {"endpoint": f"{listen_host}:0"},
            },
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"{listen_host}:{otlp_port}"}}}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
    }
    return json.dumps(config, indent=2) + "\n"


def service_env(service: str, otlp_url: str) -> dict[str, str]:
    """What a service that exports spans is given: the OpenTelemetry SDK's own variables, so
    that `OTLPSpanExporter()` and `Resource.create()` need no argument. Spans are sent every
    100 ms (the SDK waits 5 s by default), so the checks see them at once."""
    return {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp_url}{OTLP_PATH}",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
