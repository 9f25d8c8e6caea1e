"""Safe on a shared machine: a run never touches another live run (another terminal with its
own TMPDIR, another Unix user), and whatever a killed harness leaves is still reaped; the
harness stopped by SIGINT, SIGTERM or SIGKILL at random moments leaves nothing behind."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.runs import OWNER_ENV, RUN_ENV, Owner, run_processes
from harness.tools import find_toxiproxy
from tests.conftest import FIXTURE_LABS, ROOT, chaoslab_command, child_env

pytestmark = pytest.mark.integration
PING = str(FIXTURE_LABS / "ping")
MOMENTS = 5  # random moments per signal
OTHER_USER = "chaoslab-other"


@dataclass
class Harness:
    """A `chaoslab` command running in a temp folder of its own, as another terminal would."""

    process: subprocess.Popen[bytes]
    tmpdir: Path
    docker: Any = None  # a Docker client, when its runs use the docker backend

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[str]:
        """What its runs started, found by their owner label: processes, and containers."""
        found = [
            f"pid {p.pid}"
            for p in run_processes()
            if p.owner is not None and p.owner.pid == self.pid and p.owner.pidns == Owner.me().pidns
        ]
        if self.docker is not None:
            for kind in (self.docker.containers, self.docker.networks):
                listed = kind.list(all=True) if kind is self.docker.containers else kind.list()
                for thing in listed:
                    attrs = thing.attrs
                    labels = attrs.get("Labels") or attrs.get("Config", {}).get("Labels") or {}
                    owner = Owner.parse(labels.get("chaoslab.owner"))
                    if owner is not None and owner.pid == self.pid:
                        found.append(f"docker {thing.name}")
        return found

    def leftovers(self) -> list[str]:
        folders = [p.name for p in self.tmpdir.glob("chaoslab-run-*")]
        entries = [p.name for p in self.tmpdir.glob("chaoslab-registry-*/*.json")]
        return folders + entries + self.children()


def start(tmpdir: Path, *args: str, hang: float = 30.0, docker: Any = None, **env: str) -> Harness:
    tmpdir.mkdir(parents=True, exist_ok=True)
    if docker is not None:
        args = (*args, "--backend", "docker")
    process = subprocess.Popen(
        chaoslab_command(*args),
        env=child_env(
            TMPDIR=str(tmpdir),
            XDG_CACHE_HOME=str(tmpdir / "cache"),  # its own `up` record and status
            CHAOSLAB_TOXIPROXY=str(find_toxiproxy()),
            PING_LAB_HANG=str(hang),
            **env,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return Harness(process, tmpdir, docker)


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def reap_from(tmpdir: Path) -> None:
    """The next start in `tmpdir`: what reaps a killed run's leftovers."""
    subprocess.run(
        [sys.executable, "-c", "from harness.runs import Run; Run.create().close()"],
        env=child_env(TMPDIR=str(tmpdir)),
        check=True,
        cwd=ROOT,
        timeout=30,
    )


@pytest.fixture
def docker() -> Any:
    """No Docker here: these run on the process backend (tests/docker runs them on docker)."""
    return None


@pytest.fixture
def bystander(tmp_path: Path, docker: Any) -> Iterator[Harness]:
    """A live, unrelated lab run (`chaoslab up`) in a temp folder of its own."""
    harness = start(tmp_path / "bystander", "up", PING, docker=docker)
    assert harness.process.stdout is not None
    for line in harness.process.stdout:  # `up` says when everything is started
        if b" is up " in line:
            break
    else:
        raise AssertionError("the bystander's lab did not come up")
    yield harness
    harness.process.send_signal(signal.SIGINT)
    try:
        harness.process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # Never leave a live run behind (a harness started with SIGINT ignored, say, by a
        # shell's background job): SIGTERM takes the same teardown path.
        harness.process.terminate()
        harness.process.communicate(timeout=60)
        raise
    wait_until(lambda: not harness.leftovers(), 20, "the bystander to clean up")


def assert_untouched(bystander: Harness, before: list[int]) -> None:
    assert bystander.process.poll() is None, "the bystander's harness died"
    assert sorted(bystander.children()) == sorted(before), "the bystander's services changed"


def test_a_run_in_another_tmpdir_is_left_alone(
    tmp_path: Path, bystander: Harness, docker: Any
) -> None:
    before = bystander.children()
    mine = start(tmp_path / "mine", "check", PING, hang=0.5, docker=docker)
    output = mine.process.communicate(timeout=60)[0].decode()
    assert mine.process.returncode == 0, output
    assert_untouched(bystander, before)
    assert not mine.leftovers()


def test_a_killed_run_is_reaped_from_its_own_tmpdir_only_when_dead(
    tmp_path: Path, bystander: Harness, docker: Any
) -> None:
    before = bystander.children()
    mine = start(tmp_path / "mine", "check", PING, hang=30, docker=docker)
    wait_until(lambda: len(mine.children()) >= 3, 60, "the run to start")
    mine.process.kill()
    mine.process.wait(timeout=10)
    reap_from(tmp_path / "mine")
    wait_until(lambda: not mine.leftovers(), 30, f"the killed run to be reaped: {mine.leftovers()}")
    assert_untouched(bystander, before)


def signal_at_random_moments() -> list[tuple[signal.Signals, float]]:
    """From 0.25 s on (before that the interpreter itself may still be starting, and a Ctrl-C
    there is Python's to report) to past the end of the check's run."""
    rng = random.Random(os.environ.get("CHAOSLAB_TEST_SEED", str(time.time_ns())))
    plan = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        plan += [(sig, round(rng.uniform(0.25, 3.0), 2)) for _ in range(MOMENTS)]
    return plan


def test_signals_at_random_moments_leave_nothing_and_spare_a_live_run(
    tmp_path: Path, bystander: Harness, docker: Any
) -> None:
    before = bystander.children()
    outcomes = []
    for number, (sig, delay) in enumerate(signal_at_random_moments()):
        mine = start(tmp_path / f"run{number}", "check", PING, hang=1.0, docker=docker)
        time.sleep(delay)
        running = mine.process.poll() is None
        mine.process.send_signal(sig)
        output = mine.process.communicate(timeout=60)[0].decode()
        what = f"{sig.name} at {delay} s ({'running' if running else 'already done'})"
        outcomes.append(what)
        if sig == signal.SIGKILL:
            if docker is None:  # processes die with the harness; containers wait for a reaper
                wait_until(lambda h=mine: not h.children(), 10, f"{what}: children to die")
            reap_from(mine.tmpdir)
        else:
            assert "Traceback" not in output, f"{what}:\n{output}"
        wait_until(lambda h=mine: not h.leftovers(), 30, f"{what}: leftovers {mine.leftovers()}")
        assert_untouched(bystander, before)
    print("\n".join(outcomes))


# -- another Unix user --------------------------------------------------------------------------
def _other_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root to create and act as another user")
    if shutil.which("useradd") is None:
        pytest.skip("no useradd here")
    if subprocess.run(["id", OTHER_USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", OTHER_USER], check=True)
    return OTHER_USER


def test_a_process_of_another_user_is_never_reaped(tmp_path: Path) -> None:
    user = _other_user()
    dead_owner = Owner.me()
    dead_owner = Owner(dead_owner.host, dead_owner.boot, dead_owner.pidns, 2**22 + 7, "1")
    victim = subprocess.Popen(
        ["sleep", "30"],
        user=user,
        env={"PATH": os.environ["PATH"], RUN_ENV: "0therus3", OWNER_ENV: dead_owner.label()},
    )
    try:
        wait_until(
            lambda: any(p.pid == victim.pid for p in run_processes()), 5, "the labelled process"
        )
        reap_from(tmp_path / "root")
        time.sleep(0.2)
        assert victim.poll() is None, "root's reaper killed another user's process"
    finally:
        victim.kill()
        victim.wait()


def _python_for(user: str) -> tuple[str, str]:
    """An interpreter the other user can run, and the path that finds the project on it."""
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None)
    path = f"{ROOT}{os.pathsep}{site}"
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [python, "-c", "import sys, harness.cli, uvicorn; print(sys.version_info[:2])"],
                user=user,
                env={"PATH": os.environ["PATH"], "PYTHONPATH": path},
                cwd="/",
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError:  # not theirs to run (a venv under a private home)
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            return python, path
    pytest.skip(f"no Python {sys.version_info[:2]} with this project that user {user} can run")


def test_two_users_runs_leave_each_other_alone(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    user = _other_user()
    python, path = _python_for(user)
    home = Path(tempfile.mkdtemp(prefix="chaoslab-other-user-"))  # pytest's tmp is root's only
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    toxiproxy = home / "toxiproxy-server"
    shutil.copy(find_toxiproxy(), toxiproxy)
    shutil.chown(home, user)
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "HOME": str(home),
        "PYTHONPATH": path,
        "CHAOSLAB_TOXIPROXY": str(toxiproxy),
        "PING_LAB_HANG": "30",
    }
    theirs = subprocess.Popen(
        [python, "-m", "harness.cli", "check", PING],
        user=user,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    harness = Harness(theirs, home)
    try:
        wait_until(lambda: len(harness.children()) >= 3, 30, "the other user's run to start")
        before = harness.children()
        mine = start(tmp_path / "mine", "check", PING, hang=0.2)
        output = mine.process.communicate(timeout=60)[0].decode()
        assert mine.process.returncode == 0, output
        assert sorted(harness.children()) == sorted(before), "root's run touched the other's"
        # Their harness killed: its services die with it, and their next start reaps the rest.
        theirs.kill()
        theirs.wait(timeout=10)
        subprocess.run(
            [python, "-c", "from harness.runs import Run; Run.create().close()"],
            user=user,
            env=env,
            cwd=ROOT,
            check=True,
            timeout=30,
        )
        wait_until(lambda: not harness.leftovers(), 10, f"their leftovers: {harness.leftovers()}")
    finally:
        if theirs.poll() is None:
            theirs.kill()
