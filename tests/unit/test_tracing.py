"""The trace backend's parts that need no Jaeger: its per-run configuration, what services are
given to find it, and how the query API's answers are read."""

from __future__ import annotations

import json

from harness.tracing.client import _trace, normal_id
from harness.tracing.config import render, service_env


def test_the_configuration_binds_only_the_runs_ports() -> None:
    config = json.loads(render("127.0.0.1", 4001, 4002))

    assert config["receivers"]["otlp"]["protocols"] == {"http": {"endpoint": "127.0.0.1:4001"}}
    query = config["extensions"]["jaeger_query"]
    assert query["http"]["endpoint"] == "127.0.0.1:4002"
    # Jaeger's defaults are fixed ports (16685 for the gRPC query API, 8888 for its own
    # metrics): two runs at once would fight over them.
    assert query["grpc"]["endpoint"] == "127.0.0.1:0"
    assert config["service"]["telemetry"]["metrics"] == {"level": "none", "readers": []}
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    assert set(config["extensions"]) == set(config["service"]["extensions"])
    assert "memory" in config["extensions"]["jaeger_storage"]["backends"]["memory"]


def test_services_find_jaeger_through_the_sdks_own_variables() -> None:
    env = service_env("orders", "http://jaeger:4001")

    assert env["OTEL_SERVICE_NAME"] == "orders"
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://jaeger:4001/v1/traces"
    assert int(env["OTEL_BSP_SCHEDULE_DELAY"]) <= 200  # the checks see spans at once
    assert "OTEL_TRACES_SAMPLER" not in env  # sampling is the learner's to get right


def test_ids_keep_their_w3c_width() -> None:
    assert normal_id("abc") == "0000000000000abc"
    assert normal_id("1111", 32) == "0" * 28 + "1111"  # a trace id is 128 bits, always
    assert normal_id("A" * 32, 32) == "a" * 32


def test_a_trace_is_read_with_parents_kinds_and_status() -> None:
    raw = {
        "traceID": "7" * 31,
        "spans": [
            {
                "traceID": "7" * 31,
                "spanID": "1" * 16,
                "operationName": "POST /orders",
                "references": [{"refType": "CHILD_OF", "traceID": "7" * 31, "spanID": "f" * 16}],
                "startTime": 1_000_000,
                "duration": 350_000,
                "tags": [
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                    {"key": "http.response.status_code", "type": "int64", "value": 502},
                ],
                "processID": "p1",
            },
            {
                "traceID": "7" * 31,
                "spanID": "2" * 16,
                "operationName": "GET /prices/sku-1",
                "references": [{"refType": "CHILD_OF", "traceID": "7" * 31, "spanID": "1" * 16}],
                "startTime": 1_010_000,
                "duration": 5_000,
                "tags": [{"key": "span.kind", "type": "string", "value": "client"}],
                "processID": "p1",
            },
        ],
        "processes": {"p1": {"serviceName": "orders", "tags": []}},
    }

    trace = _trace(raw)

    assert trace.trace_id == "0" + "7" * 31
    server, client = trace.spans
    assert (server.service, server.kind, server.is_error) == ("orders", "server", True)
    assert server.parent_id == "f" * 16
    assert server.duration_ms == 350.0
    assert server.tags["http.response.status_code"] == 502
    assert trace.children(server) == [client]
    assert (client.kind, client.is_error) == ("client", False)
    assert trace.of("orders", "client") == [client]
