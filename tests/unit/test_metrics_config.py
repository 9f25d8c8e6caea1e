"""harness.metrics.config: the run's prometheus.yml."""

from __future__ import annotations

import json
from pathlib import Path

from harness.metrics.config import MetricsSpec, render


def test_every_service_is_its_own_job_scraped_directly_at_the_labs_interval() -> None:
    spec = MetricsSpec(interval=0.5, path="/stats", scrape=("orders", "checkout"))
    config = json.loads(
        render(spec, {"orders": "127.0.0.1:2", "checkout": "127.0.0.1:1"}, [Path("/r.yml")], "r1")
    )

    assert config["global"]["scrape_interval"] == "500ms"
    assert config["global"]["evaluation_interval"] == "500ms"
    assert config["global"]["scrape_timeout"] == "500ms"  # all the interval allows
    assert config["global"]["external_labels"] == {"chaoslab_run": "r1"}
    assert config["rule_files"] == ["/r.yml"]
    assert [
        (job["job_name"], job["metrics_path"], job["static_configs"])
        for job in config["scrape_configs"]
    ] == [
        ("checkout", "/stats", [{"targets": ["127.0.0.1:1"], "labels": {"service": "checkout"}}]),
        ("orders", "/stats", [{"targets": ["127.0.0.1:2"], "labels": {"service": "orders"}}]),
    ]


def test_a_long_interval_keeps_a_timeout_of_at_most_ten_seconds() -> None:
    config = json.loads(render(MetricsSpec(interval=15), {}, [], "r"))

    assert config["global"]["scrape_interval"] == "15000ms"
    assert config["global"]["scrape_timeout"] == "10000ms"
