"""Nothing outlives a run: after success, failure, Ctrl-C, SIGTERM or `kill -9` of the harness
(whose leftovers the next start reaps)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.processes import ChildProcess
from harness.runs import OWNER_ENV, RUN_ENV, Owner, Run, labelled_processes, reap_stale, registry
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env, run_owned_by

pytestmark = pytest.mark.integration
PING = str(FIXTURE_LABS / "ping")


def start_check(hang: float, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        chaoslab_command("check", PING),
        env=child_env(PING_LAB_HANG=str(hang), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_run(child: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
    """The id of the run `child` owns, once its services and toxiproxy are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_id = run_owned_by(child.pid)
        if run_id is not None and len(processes_of(run_id)) >= 3:
            return run_id
        time.sleep(0.05)
    child.kill()
    raise AssertionError(f"the run did not start: {child.communicate()[0].decode()}")


def processes_of(run_id: str) -> list[int]:
    return [pid for pid, owner in labelled_processes() if owner == run_id]


def folders_of(run_id: str) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"chaoslab-run-{run_id}-*"))


def assert_clean(run_id: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while processes_of(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(run_id) == [], "processes of the run are still alive"
    assert folders_of(run_id) == [], "the run's temp folder is still there"
    assert not (registry() / f"{run_id}.json").exists(), "the run is still registered"


def test_clean_after_success() -> None:
    child = start_check(hang=1.0)
    run_id = wait_for_run(child)
    output = child.communicate(timeout=60)[0].decode()
    assert child.returncode == 0, output
    assert_clean(run_id)


def test_clean_after_a_failed_check() -> None:
    child = start_check(hang=1.0, PING_LAB_FAIL="1")
    run_id = wait_for_run(child)
    output = child.communicate(timeout=60)[0].decode()
    assert child.returncode == 1, output
    assert "2 of 3 checks pass" in output
    assert_clean(run_id)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_clean_after_interrupt(sig: signal.Signals) -> None:
    child = start_check(hang=30.0)
    run_id = wait_for_run(child)
    child.send_signal(sig)
    output = child.communicate(timeout=30)[0].decode()
    assert child.returncode == (130 if sig == signal.SIGINT else 143), output
    assert "interrupted" in output
    assert_clean(run_id)


def test_kill_9_leftovers_are_reaped_at_the_next_start() -> None:
    child = start_check(hang=30.0)
    run_id = wait_for_run(child)
    child.kill()
    child.wait(timeout=10)
    # The children die with the harness (PDEATHSIG); the folder waits for the next start.
    deadline = time.monotonic() + 5
    while processes_of(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(run_id) == []
    assert folders_of(run_id), "expected the dead run's folder before the next start"
    next_run = Run.create()  # the next start reaps
    next_run.close()
    assert_clean(run_id)


def test_reaper_kills_labelled_processes_of_a_dead_run() -> None:
    # A process whose run's owner is dead, as if PDEATHSIG had not reached it.
    me = Owner.me()
    dead = Owner(me.host, me.boot, me.pidns, 2**22 + 11, "1")
    orphan = subprocess.Popen(
        ["sleep", "60"],
        env={"PATH": os.environ["PATH"], RUN_ENV: "deadbeef", OWNER_ENV: dead.label()},
        start_new_session=True,
    )
    try:
        # Until it has exec'd, the child shows the environment of this process, not its own.
        deadline = time.monotonic() + 5
        while orphan.pid not in processes_of("deadbeef") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert orphan.pid in processes_of("deadbeef")
        assert "deadbeef" in reap_stale()
        assert orphan.wait(timeout=5) == -signal.SIGKILL
    finally:
        orphan.kill()
        orphan.wait()


def test_a_grandchild_in_a_session_of_its_own_dies_with_the_run(tmp_path: Path) -> None:
    run = Run.create()
    try:
        # `setsid` puts the grandchild out of reach of its parent's process group.
        parent = ChildProcess(
            "forker",
            ["setsid", "-f", "sleep", "60"],
            run_id=run.id,
            log=tmp_path / "forker.log",
            env={"PATH": os.environ["PATH"]},
        ).start()
        assert parent._popen is not None
        parent._popen.wait(5)
        deadline = time.monotonic() + 5
        while not processes_of(run.id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_of(run.id), "the grandchild should be running"
    finally:
        run.close()
    deadline = time.monotonic() + 5
    while processes_of(run.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(run.id) == [], "the setsid grandchild outlived its run"


def test_children_carry_the_run_label(tmp_path: Path) -> None:
    child = ChildProcess("env", ["env"], run_id="abc123", log=tmp_path / "env.log").start()
    assert child.wait(5) == 0
    log = (tmp_path / "env.log").read_text()
    assert f"{RUN_ENV}=abc123" in log
    assert all(line[12] == " " and line[2] == ":" for line in log.splitlines())  # stamped
