"""A lab with a `[postgres]` table on the docker backend: PostgreSQL runs as a container on the
run network (the host's installation mounted into the base image), the services reach it
there, the checks on the published port, its lock waits are read from the container's log,
and it goes with the run."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from harness import LabEnvironment, load_lab
from harness.images import Images
from tests.conftest import FIXTURE_LABS, wait_until_waiting

pytestmark = pytest.mark.docker

HELD = 0.6


def test_postgres_runs_in_a_container_and_leaves_with_the_run(
    docker_client: Any, docker_images: Images
) -> None:
    lab = load_lab(FIXTURE_LABS / "stored")
    with LabEnvironment(lab, seed=6, backend_name="docker") as env:
        assert env.run is not None
        run_id = env.run.id
        url = env.url("ledger")
        httpx.post(f"{url}/entries", json={"amount": 5}, timeout=10).raise_for_status()
        with env.postgres.connect() as db:
            assert db.execute("SELECT total FROM totals").fetchone() == (5,)
        posted: list[int] = []

        def post() -> None:
            answer = httpx.post(f"{url}/entries", json={"amount": 1}, timeout=10)
            posted.append(answer.status_code)

        with env.postgres.connect() as db, db.transaction():
            db.execute("UPDATE totals SET total = total WHERE id = 1")  # holds the row
            writer = threading.Thread(target=post)
            writer.start()
            wait_until_waiting(env)
            time.sleep(HELD)
        writer.join(10)
        assert posted == [200]
        deadline = time.monotonic() + 10
        while not (waits := [w for w in env.postgres.lock_waits() if w.granted]):
            assert time.monotonic() < deadline, "\n".join(env.postgres.log_lines()[-20:])
            time.sleep(0.2)
        assert HELD <= waits[0].waited <= HELD + 3.0
        assert waits[0].statement.startswith("UPDATE totals")
        names = {
            c.name
            for c in docker_client.containers.list(filters={"label": f"chaoslab.run={run_id}"})
        }
        assert f"chaoslab-{run_id}-postgres" in names
    left = docker_client.containers.list(all=True, filters={"label": f"chaoslab.run={run_id}"})
    assert left == []
