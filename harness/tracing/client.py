"""What checks ask a run's Jaeger, over its query API (the JSON its UI reads): a trace by id,
the traces of a service, and the services that sent spans. The harness speaks it itself, as it
does Toxiproxy's and Prometheus's: one dependency less, and errors in the lab's words."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness._errors import RunError

READY_PROBE = 1.0  # seconds one readiness probe waits


class JaegerError(RunError):
    """Jaeger refused a query or did not answer."""


@dataclass(frozen=True)
class Span:
    """One span as Jaeger stored it; times in microseconds since the epoch."""

    trace_id: str
    span_id: str
    parent_id: str | None  # None for a root span
    service: str
    name: str
    start_us: int
    duration_us: int
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """ "server", "client", "internal", "producer" or "consumer"."""
        return str(self.tags.get("span.kind", "internal"))

    @property
    def is_error(self) -> bool:
        """Whether its status is ERROR (Jaeger keeps OpenTelemetry's status as tags)."""
        return str(self.tags.get("otel.status_code", "")).upper() == "ERROR"

    @property
    def duration_ms(self) -> float:
        return self.duration_us / 1000

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def describe(self) -> str:
        status = " ERROR" if self.is_error else ""
        return f"{self.service} {self.kind} span '{self.name}' ({self.duration_ms:.0f} ms{status})"


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: list[Span]

    def by_id(self) -> dict[str, Span]:
        return {span.span_id: span for span in self.spans}

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span.span_id]

    def of(self, service: str, kind: str | None = None) -> list[Span]:
        return [s for s in self.spans if s.service == service and (kind is None or s.kind == kind)]


def normal_id(hex_id: str, width: int = 16) -> str:
    """Jaeger drops the leading zeros of an id; the W3C form keeps them: 32 digits for a trace
    id (OpenTelemetry's are always 128 bits), 16 for a span id."""
    return hex_id.lower().rjust(width, "0")


def _span(raw: dict[str, Any], processes: dict[str, Any]) -> Span:
    parent = next(
        (ref["spanID"] for ref in raw.get("references") or [] if ref.get("refType") == "CHILD_OF"),
        None,
    )
    process = processes.get(raw.get("processID", ""), {})
    return Span(
        trace_id=normal_id(raw["traceID"], 32),
        span_id=normal_id(raw["spanID"]),
        parent_id=normal_id(parent) if parent else None,
        service=str(process.get("serviceName", "")),
        name=str(raw.get("operationName", "")),
        start_us=int(raw.get("startTime", 0)),
        duration_us=int(raw.get("duration", 0)),
        tags={tag["key"]: tag.get("value") for tag in raw.get("tags") or []},
    )


def _trace(raw: dict[str, Any]) -> Trace:
    processes = raw.get("processes") or {}
    spans = [_span(span, processes) for span in raw.get("spans") or []]
    return Trace(normal_id(raw["traceID"], 32), spans)


class JaegerClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            return self._http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise JaegerError(f"Jaeger ({self.url}) did not answer: {exc!r}") from exc

    def _data(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise JaegerError(
                f"Jaeger answered {response.status_code} to {response.request.url}: "
                f"{response.text[:300]}"
            )
        try:
            return response.json().get("data")
        except ValueError as exc:
            raise JaegerError(f"Jaeger answered {response.request.url} without JSON") from exc

    def ready(self) -> bool:
        """One short probe: a port that accepts and never answers (another program's) must
        not hold the start up for a whole query's timeout."""
        try:
            return (
                self._http.get(f"{self.url}/api/services", timeout=READY_PROBE).status_code == 200
            )
        except httpx.HTTPError:
            return False

    def services(self) -> list[str]:
        return sorted(self._data(self._get("/api/services")) or [])

    def trace(self, trace_id: str) -> Trace | None:
        """The trace with this id (32 hex digits), or None when Jaeger has no span of it."""
        response = self._get(f"/api/traces/{trace_id}")
        if response.status_code == 404:
            return None
        data = self._data(response) or []
        return _trace(data[0]) if data else None

    def traces(self, service: str, *, since: float, limit: int = 10_000) -> list[Trace]:
        """The traces with a span of `service` that started after `since` (epoch seconds)."""
        params = {
            "service": service,
            "start": str(int(since * 1_000_000)),
            "end": str(int((time.time() + 3600) * 1_000_000)),
            "limit": str(limit),
        }
        response = self._get("/api/traces", params)
        if response.status_code == 404:
            return []
        return [_trace(raw) for raw in self._data(response) or []]

    def traces_of(self, services: Iterable[str], *, since: float) -> dict[str, Trace]:
        """Every trace with a span of any of `services` that started after `since`, by id."""
        found: dict[str, Trace] = {}
        known = set(self.services())
        for service in services:
            if service in known:
                for trace in self.traces(service, since=since):
                    found[trace.trace_id] = trace
        return found

    def settle(
        self,
        services: Iterable[str],
        *,
        since: float,
        complete: Callable[[dict[str, Trace]], bool],
        timeout: float,
        quiet: float = 1.0,
    ) -> dict[str, Trace]:
        """`traces_of(services)`, once `complete` says everything expected has arrived, or no
        new span came for `quiet` seconds (a service that sends no span never will), or after
        `timeout`: spans reach Jaeger a moment after their service ended them."""
        wanted = list(services)
        deadline = time.monotonic() + timeout
        spans, changed = -1, time.monotonic()
        while True:
            found = self.traces_of(wanted, since=since)
            now = time.monotonic()
            count = sum(len(t.spans) for t in found.values())
            if count != spans:
                spans, changed = count, now
            if complete(found) or now - changed >= quiet or now >= deadline:
                return found
            time.sleep(0.1)
