"""A lab with a `[postgres]` table gets a real PostgreSQL per run: its services find it in
DATABASE_URL, checks connect to it and read the lock waits it logged, two runs at once have
two servers, and it is gone with the run (its process and its data)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import LabEnvironment, load_lab
from harness.runs import Run, run_processes
from tests.conftest import FIXTURE_LABS, wait_until_waiting

pytestmark = pytest.mark.integration

STORED = FIXTURE_LABS / "stored"
HELD = 0.6  # seconds the test holds the row the service wants


@pytest.fixture(scope="module")
def env() -> Iterator[LabEnvironment]:
    with LabEnvironment(load_lab(STORED), seed=1) as running:
        yield running


def test_the_service_and_the_checks_share_the_database(env: LabEnvironment) -> None:
    assert env.postgres_url == env.postgres.url  # what `chaoslab up` prints
    assert env.postgres.url.startswith("postgresql://chaoslab@127.0.0.1:")
    with env.postgres.connect() as db:
        db.execute("UPDATE totals SET total = 100")
    answer = httpx.post(f"{env.url('ledger')}/entries", json={"amount": 5}, timeout=5)
    answer.raise_for_status()
    assert httpx.get(f"{env.url('ledger')}/total", timeout=5).json() == {"total": 105}
    with env.postgres.connect() as db:
        assert db.execute("SELECT total FROM totals").fetchone() == (105,)


def test_a_lock_wait_is_logged_with_its_statement_and_length(env: LabEnvironment) -> None:
    posted: list[int] = []

    def post() -> None:
        answer = httpx.post(f"{env.url('ledger')}/entries", json={"amount": 1}, timeout=10)
        posted.append(answer.status_code)

    with env.postgres.connect() as db, db.transaction():
        db.execute("UPDATE totals SET total = total + 0 WHERE id = 1")  # holds the row
        writer = threading.Thread(target=post)
        writer.start()
        wait_until_waiting(env)
        time.sleep(HELD)
    writer.join(10)
    assert posted == [200]
    deadline = time.monotonic() + 5
    while not (waits := [w for w in env.postgres.lock_waits() if w.granted]):
        assert time.monotonic() < deadline, "\n".join(env.postgres.log_lines()[-20:])
        time.sleep(0.1)
    (wait,) = waits
    assert HELD <= wait.waited <= HELD + 3.0
    assert wait.statement.startswith("UPDATE totals SET total = total +")
    assert "transaction" in wait.lock
    assert "UPDATE totals" in str(wait)


def test_two_runs_have_two_servers_and_each_leaves_nothing(env: LabEnvironment) -> None:
    with LabEnvironment(load_lab(STORED), seed=2) as other:
        assert other.postgres.address != env.postgres.address
        with other.postgres.connect() as db:
            assert db.execute("SELECT total FROM totals").fetchone() == (0,)
        assert other.run is not None
        run_id, folder = other.run.id, other.run.dir
        assert any(p.run == run_id for p in run_processes())
    assert not any(p.run == run_id for p in run_processes())
    assert not folder.exists()
    if os.getuid() == 0:  # root runs PostgreSQL as nobody: its data went with the folder
        assert not (folder / "postgres").exists()


KEEP_A_RUN = """
import sys, time
from harness import LabEnvironment, load_lab
env = LabEnvironment(load_lab(sys.argv[1]), seed=3).start()
print(env.run.id, flush=True)
time.sleep(120)
"""


def test_the_postgres_of_a_killed_harness_is_gone_after_the_next_start() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KEEP_A_RUN, str(STORED)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, "the run did not start"
    servers = [p for p in run_processes() if p.run == run_id and _is_postgres(p.pid)]
    assert servers, "no PostgreSQL labelled with the run"
    child.kill()
    child.wait(10)
    Run.create().close()  # the next start reaps
    deadline = time.monotonic() + 10
    while any(p.run == run_id for p in run_processes()):
        assert time.monotonic() < deadline, "a process of the killed run is still alive"
        time.sleep(0.1)
    assert not list(Path(tempfile.gettempdir()).glob(f"chaoslab-run-{run_id}-*"))


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
