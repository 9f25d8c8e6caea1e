"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness import Lab, LabEnvironment, catalogue, load_lab
from harness.runs import registry

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_LABS = Path(__file__).resolve().parent / "fixtures" / "labs"


@pytest.fixture(scope="session")
def ping_lab() -> Lab:
    return load_lab(FIXTURE_LABS / "ping")


def chaoslab_command(*args: str) -> list[str]:
    """The CLI as a learner runs it, with this interpreter."""
    return [sys.executable, "-m", "harness.cli", *args]


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def run_owned_by(pid: int) -> str | None:
    """The id of the run that process `pid` registered, if it has registered one."""
    for entry in registry().glob("*.json"):
        try:
            owner = json.loads(entry.read_text()).get("owner_pid")
        except (OSError, ValueError):
            continue
        if owner == pid:
            return entry.stem
    return None


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` runs one lab's proofs on one worker (see tests/proof_scheduling.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.proof_scheduling import LabScheduling

    scheduler = LabScheduling(config, log)
    scheduler.labs = {lab.slug for lab in catalogue()}
    return scheduler


def wait_until_waiting(env: LabEnvironment) -> None:
    """Until the server shows a statement waiting for a lock (however slow the machine is to
    send it): the wait the test measures starts there."""
    deadline = time.monotonic() + 20
    with env.postgres.connect() as watcher:
        while not watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone():
            assert time.monotonic() < deadline, "the service's statement never waited"
            time.sleep(0.02)
