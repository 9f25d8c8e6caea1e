"""A lab's dashboard (dashboards/<lab>.json, Grafana's format), drawn from the run's own
Prometheus before it stops: each panel's queries as range queries over the run, kept in the
run's record so that the HTML report can draw them beside the faults."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.lab import PROJECT_ROOT
from harness.metrics.client import PrometheusClient, PrometheusError

MAX_POINTS = 300  # per series: a run of seconds at a quarter-second step, or a longer one thinned
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


HARNESS = "chaoslab-harness"  # dashboards/chaoslab-harness.json: the harness's own panels


def dashboard_for(slug: str, root: Path = PROJECT_ROOT) -> Path | None:
    path = root / "dashboards" / f"{slug}.json"
    return path if path.is_file() else None


def capture(
    client: PrometheusClient, dashboard: Path, start: float, end: float, began: float, step: float
) -> list[dict[str, Any]]:
    """Every panel of `dashboard` over [start, end] (wall-clock seconds), its points on the
    record's clock (seconds since `began`). A query Prometheus refuses leaves its panel
    with the error instead of series."""
    panels = json.loads(dashboard.read_text(encoding="utf-8")).get("panels", [])
    step = max(step, (end - start) / MAX_POINTS, 0.001)
    captured = []
    for panel in panels:
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        series: list[dict[str, Any]] = []
        error = ""
        for target in panel.get("targets", []):
            try:
                found = client.query_range(target["expr"], start, end, step)
            except PrometheusError as exc:
                error = str(exc)
                continue
            for one in found:
                series.append(
                    {
                        "name": _legend(target.get("legendFormat", ""), one.labels),
                        "points": [[round(t - began, 3), v] for t, v in one.points],
                    }
                )
        captured.append(
            {"title": panel.get("title", ""), "unit": unit, "series": series, "error": error}
        )
    return captured


def _legend(template: str, labels: dict[str, str]) -> str:
    if not template:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), template)
