"""The harness's own metrics, for a run with a Prometheus: which faults are on, and the
requests the checks' clients made, by the service they called, how they ended and how long
they took. The run's Prometheus scrapes them as job `chaoslab`, beside the lab's services, so
that a dashboard (dashboards/chaoslab-harness.json) and the report draw the faults over the
lab's own metrics.

What the clients saw is measured where they see it: a transport under every traffic client's
httpx.Client (`observed_transport`) reports each request to the exporters running in this
process, which keep the ones sent to their run's proxies.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

JOB = "chaoslab"
# Seconds; fine below 1 s, where the labs' latencies and faults live.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

_running: list[HarnessExporter] = []
_lock = threading.Lock()


class HarnessExporter:
    """One run's harness metrics, served on `port` (at `host`) in a thread of its own."""

    def __init__(self, lab: str, services_by_port: Mapping[int, str]) -> None:
        self.lab = lab
        self.services_by_port = dict(services_by_port)
        self.registry = CollectorRegistry()
        self.faults = Gauge(
            "chaoslab_fault_active",
            "1 while a fault the checks injected is on, 0 once healed",
            ["lab", "fault"],
            registry=self.registry,
        )
        self.requests = Counter(
            "chaoslab_requests",
            "Requests the checks' clients sent, by the service called and how they ended "
            "(2xx, 3xx, 4xx, 5xx, or error: no answer)",
            ["lab", "service", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chaoslab_request_duration_seconds",
            "How long the checks' clients waited for an answer (or for the error)",
            ["lab", "service"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._server: Any = None
        self.port = 0

    def start(self, host: str, port: int) -> HarnessExporter:
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = port
        with _lock:
            _running.append(self)
        return self

    def stop(self) -> None:
        with _lock:
            if self in _running:
                _running.remove(self)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fault(self, description: str, active: bool) -> None:
        self.faults.labels(self.lab, description).set(1 if active else 0)

    def request(self, port: int | None, status: int | None, seconds: float) -> None:
        service = self.services_by_port.get(port or 0)
        if service is None:
            return
        outcome = f"{status // 100}xx" if status is not None else "error"
        self.requests.labels(self.lab, service, outcome).inc()
        self.latency.labels(self.lab, service).observe(seconds)


def _observe(port: int | None, status: int | None, seconds: float) -> None:
    with _lock:
        running = list(_running)
    for exporter in running:
        exporter.request(port, status, seconds)


class _ObservedTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except Exception:
            _observe(request.url.port, None, time.monotonic() - started)
            raise
        _observe(request.url.port, response.status_code, time.monotonic() - started)
        return response

    def close(self) -> None:
        self.inner.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the certificates takes 15 ms a client, and
    a run starts clients by the dozen (the labs speak plain HTTP anyway)."""
    return ssl.create_default_context()


def observed_transport() -> httpx.BaseTransport:
    """An httpx transport that reports every request to the running exporters (none: a
    no-op)."""
    return _ObservedTransport(httpx.HTTPTransport(verify=_tls()))
