"""What checks ask a run's Prometheus, over its HTTP API: instant and range queries, the
alerts and the rules as it evaluates them, and whether its targets are being scraped."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from harness._errors import RunError

READY_PROBE = 1.0  # seconds one readiness probe waits


class PrometheusError(RunError):
    """Prometheus refused a query or did not answer."""


@dataclass(frozen=True)
class Sample:
    """One series' value at one time."""

    labels: dict[str, str]
    at: float
    value: float


@dataclass(frozen=True)
class Series:
    """One series over a range."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Alert:
    name: str
    state: str  # "pending" or "firing"
    labels: dict[str, str]
    active_at: str


class PrometheusClient:
    """A small client of the query API (the harness speaks it itself, as it does Toxiproxy's:
    one dependency less, and errors in the lab's words)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: str) -> Any:
        try:
            response = self._http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus ({self.url}) did not answer: {exc!r}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or body.get("status") != "success":
            what = body.get("error") or response.text[:200]
            raise PrometheusError(f"Prometheus refused {path} {params}: {what}")
        return body["data"]

    def ready(self) -> bool:
        """One short probe: a port that accepts and never answers (another program's) must
        not hold the start up for a whole query's timeout."""
        try:
            return self._http.get(f"{self.url}/-/ready", timeout=READY_PROBE).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant query (at `at`, wall-clock seconds, else now)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", **params)
        if data["resultType"] == "scalar":
            at_, value = data["result"]
            return [Sample({}, float(at_), float(value))]
        return [
            Sample(item["metric"], float(item["value"][0]), float(item["value"][1]))
            for item in data["result"]
        ]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of an instant query, or None when it has no series."""
        samples = self.query(expr, at)
        if len(samples) > 1:
            raise PrometheusError(f"'{expr}' gave {len(samples)} series, expected one")
        return samples[0].value if samples else None

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = self._get(
            "/api/v1/query_range",
            query=expr,
            start=f"{start:.3f}",
            end=f"{end:.3f}",
            step=f"{step:.3f}",
        )
        return [
            Series(item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def alerts(self) -> list[Alert]:
        data = self._get("/api/v1/alerts")
        return [
            Alert(a["labels"].get("alertname", ""), a["state"], a["labels"], a.get("activeAt", ""))
            for a in data["alerts"]
        ]

    def rules(self) -> list[dict[str, Any]]:
        """Every rule as Prometheus evaluates it (with its health and last error)."""
        data = self._get("/api/v1/rules")
        return [rule for group in data["groups"] for rule in group["rules"]]

    def targets(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._get("/api/v1/targets")["activeTargets"]
        return data

    def series(self, match: str, start: float, end: float) -> list[dict[str, str]]:
        """The label sets of every series matching a selector that had a sample between
        `start` and `end` (wall-clock seconds): how many series a metric grew to."""
        data: list[dict[str, str]] = self._get(
            "/api/v1/series", **{"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        )
        return data

    def wait_scraped_after(
        self, moment: float, job: str | None = None, timeout: float = 10.0
    ) -> None:
        """Until every target (or `job`'s) was scraped successfully after `moment` (wall-clock
        seconds): from then on, every query sees what happened before it."""
        selector = f'{{job="{job}"}}' if job else ""
        deadline = time.monotonic() + timeout
        while True:
            # timestamp() of a plain selector is the scrape's time (of an expression, the query's)
            last = self.value(f"min(timestamp(up{selector}))")
            if last is not None and last > moment and self.value(f"min(up{selector})") == 1.0:
                return
            if time.monotonic() > deadline:
                raise PrometheusError(
                    f"Prometheus did not scrape {job or 'every target'} within {timeout:.0f} s"
                )
            time.sleep(0.1)

    def wait_scraped(self, timeout: float = 10.0) -> None:
        """Until every target has been scraped successfully once."""
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            if targets and all(t.get("health") == "up" for t in targets):
                return
            if time.monotonic() > deadline:
                down = [
                    f"{t['labels'].get('job')}: {t.get('lastError') or t.get('health')}"
                    for t in targets
                    if t.get("health") != "up"
                ]
                raise PrometheusError(
                    "Prometheus could not scrape every service within "
                    f"{timeout:.0f} s: {'; '.join(down) or 'no targets'}"
                )
            time.sleep(0.1)
