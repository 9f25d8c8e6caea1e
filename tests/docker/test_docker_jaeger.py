"""A lab with a `[tracing]` table on the docker backend: Jaeger runs as a container on the run
network, the services send it their spans there, the checks read them on the published query
port, and it goes with the run."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from harness import LabEnvironment, load_lab
from harness.images import Images
from harness.tracing import install_jaeger
from tests.conftest import FIXTURE_LABS

pytestmark = pytest.mark.docker

WITHIN = 20.0


def test_jaeger_runs_in_a_container_and_leaves_with_the_run(
    docker_client: Any, docker_images: Images
) -> None:
    install_jaeger()
    lab = load_lab(FIXTURE_LABS / "traced")
    with LabEnvironment(lab, seed=5, backend_name="docker") as env:
        assert env.run is not None
        run_id = env.run.id
        trace_id = "5" * 32
        headers = {"traceparent": f"00-{trace_id}-00000000000000dd-01"}
        httpx.post(f"{env.url('shop')}/buy", headers=headers, timeout=10).raise_for_status()
        deadline = time.monotonic() + WITHIN
        while (trace := env.jaeger.trace(trace_id)) is None:
            assert time.monotonic() < deadline, "the span never reached Jaeger"
            time.sleep(0.2)
        (span,) = trace.spans
        assert (span.service, span.kind, span.parent_id) == ("shop", "server", "00000000000000dd")
        names = {
            c.name
            for c in docker_client.containers.list(filters={"label": f"chaoslab.run={run_id}"})
        }
        assert f"chaoslab-{run_id}-jaeger" in names
    left = docker_client.containers.list(all=True, filters={"label": f"chaoslab.run={run_id}"})
    assert left == []
