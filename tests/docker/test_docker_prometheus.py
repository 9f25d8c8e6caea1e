"""A lab with a `[prometheus]` table on the docker backend: Prometheus runs as a container on
the run network, scrapes the services there, evaluates the lab's rules, and goes with the run."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from harness import LabEnvironment, load_lab
from harness.images import Images
from harness.metrics import install_prometheus
from tests.conftest import FIXTURE_LABS

pytestmark = pytest.mark.docker

WITHIN = 20.0


def test_prometheus_runs_in_a_container_and_leaves_with_the_run(
    docker_client: Any, docker_images: Images
) -> None:
    install_prometheus()
    with LabEnvironment(load_lab(FIXTURE_LABS / "metered"), seed=5, backend_name="docker") as env:
        assert env.run is not None
        run_id = env.run.id
        for _ in range(3):
            httpx.post(f"{env.url('shop')}/buy", timeout=10).raise_for_status()
        env.prometheus.wait_scraped(timeout=WITHIN)  # every target: the harness's too
        targets = {t["labels"]["job"]: t for t in env.prometheus.targets()}
        assert set(targets) == {"shop", "chaoslab"}
        shop = env._service_ports["shop"]
        assert targets["shop"]["scrapeUrl"] == f"http://shop:{shop}/metrics"
        # The harness's metrics, on the run network's gateway: this machine, seen from there.
        assert env.harness_metrics is not None
        assert targets["chaoslab"]["health"] == "up"
        deadline = time.monotonic() + WITHIN
        while env.prometheus.value('shop_sales_total{status="ok"}') != 3.0:
            assert time.monotonic() < deadline, "the sales never reached Prometheus"
            time.sleep(0.2)
        assert {r["name"] for r in env.prometheus.rules()} == {"shop:sales:total", "ShopHasSold"}
        # A reader (`readers = ["shop"]`) reaches it on the run network.
        asked = httpx.get(f"{env.url('shop')}/sales", timeout=10).json()
        assert asked["data"]["result"][0]["value"][1] == "3"
        names = {
            c.name
            for c in docker_client.containers.list(filters={"label": f"chaoslab.run={run_id}"})
        }
        assert f"chaoslab-{run_id}-prometheus" in names
    left = docker_client.containers.list(all=True, filters={"label": f"chaoslab.run={run_id}"})
    assert left == []
