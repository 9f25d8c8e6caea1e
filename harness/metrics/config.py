"""The Prometheus configuration of one run: every service that serves metrics is scraped
directly (never through Toxiproxy: a fault on a link must not blind the monitoring), each its
own job named after the service, with the lab's rule files, at short intervals so that checks
see a fault within seconds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MetricsSpec:
    """A lab's `[prometheus]` table: which services serve metrics (on `path`), how often to
    scrape and evaluate, its rule files (relative to the lab's folder; the learner's own, or
    the lab's), and which services query it (they get PROMETHEUS_URL: a canary controller)."""

    interval: float = 1.0
    rules: tuple[str, ...] = ()
    path: str = "/metrics"
    scrape: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()


def render(
    spec: MetricsSpec,
    targets: Mapping[str, str],
    rule_files: list[Path],
    run_id: str,
    harness: str | None = None,
) -> str:
    """prometheus.yml for `targets` (service -> host:port), and the harness's own metrics at
    `harness` (host:port) as job `chaoslab`, if given. JSON is valid YAML, and writing it with
    json.dumps leaves nothing to quote by hand."""
    interval = _duration(spec.interval)
    config = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            # As long as the interval allows: a scrape of a busy service on a loaded machine
            # may take a while, and a timed-out scrape is a hole in every rate().
            "scrape_timeout": _duration(min(spec.interval, 10.0)),
            "external_labels": {"chaoslab_run": run_id},
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": service,
                "metrics_path": spec.path,
                "static_configs": [{"targets": [address], "labels": {"service": service}}],
            }
            for service, address in sorted(targets.items())
        ],
    }
    if harness is not None:
        # Its metrics carry their own `service` label (the service a client called): kept.
        config["scrape_configs"].append(  # type: ignore[attr-defined]
            {
                "job_name": "chaoslab",
                "honor_labels": True,
                "static_configs": [{"targets": [harness]}],
            }
        )
    return json.dumps(config, indent=2) + "\n"


def _duration(seconds: float) -> str:
    """A Prometheus duration: whole milliseconds."""
    return f"{max(1, round(seconds * 1000))}ms"
