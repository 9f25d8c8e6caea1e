"""Nothing of a docker run outlives it: no container, network or folder after success, failure,
a service that does not start, Ctrl-C, or `kill -9` of the harness."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness import Lab, LabEnvironment, ServiceNotReady, load_lab
from harness.backends.docker import OWNER_LABEL, RUN_LABEL, USER_LABEL, connect, labelled
from harness.environment import logs_dir
from harness.images import Images
from harness.runs import Owner, Run, reap_stale, registry
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env, run_owned_by

pytestmark = pytest.mark.docker
PING = str(FIXTURE_LABS / "ping")


def folders_of(run_id: str) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"chaoslab-run-{run_id}-*"))


def assert_gone(client: Any, run_id: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while labelled(client, run_id) != ([], []) and time.monotonic() < deadline:
        time.sleep(0.1)
    containers, networks = labelled(client, run_id)
    assert containers == [], f"containers of run {run_id} are left: {containers}"
    assert networks == [], f"networks of run {run_id} are left: {networks}"


def assert_clean(client: Any, run_id: str) -> None:
    assert_gone(client, run_id)
    assert folders_of(run_id) == [], "the run's temp folder is still there"
    assert not (registry() / f"{run_id}.json").exists(), "the run is still registered"


def start_check(hang: float, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        chaoslab_command("check", PING, "--backend", "docker"),
        env=child_env(PING_LAB_HANG=str(hang), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_run(client: Any, child: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The id of the run `child` owns, once its three containers are running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_id = run_owned_by(child.pid)
        if run_id is not None:
            running = client.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"})
            if len(running) >= 3:
                return run_id
        time.sleep(0.1)
    child.kill()
    raise AssertionError(f"the run did not start: {child.communicate()[0].decode()}")


def test_clean_after_stop_and_logs_kept(
    docker_client: Any, docker_images: Images, ping_lab: Lab
) -> None:
    with LabEnvironment(ping_lab, backend_name="docker") as env:
        assert env.run is not None
        run_id = env.run.id
        containers, networks = labelled(docker_client, run_id)
        assert len(containers) == 3
        assert networks == [f"chaoslab-{run_id}"]
    assert_clean(docker_client, run_id)
    kept = logs_dir("ping")
    assert {"front.log", "back.log", "toxiproxy.log"} <= {p.name for p in kept.iterdir()}
    assert "Starting Toxiproxy" in (kept / "toxiproxy.log").read_text()


def test_a_service_that_dies_is_reported_with_its_log(
    docker_client: Any, docker_images: Images, tmp_path: Path
) -> None:
    lab_dir = tmp_path / "broken"
    (lab_dir / "services").mkdir(parents=True)
    (lab_dir / "services" / "boom.py").write_text("print('boom: no config')\nraise SystemExit(3)\n")
    (lab_dir / "lab.toml").write_text(
        '[lab]\ntitle = "Broken"\nchapter = 0\nlearner_files = ["services/boom.py"]\n'
        'hints = ["a", "b"]\n\n[services.boom]\ncommand = ["python", "services/boom.py"]\n'
    )
    env = LabEnvironment(load_lab(lab_dir), backend_name="docker")
    with pytest.raises(ServiceNotReady, match="exited with code 3") as caught:
        env.start()
    assert "boom: no config" in str(caught.value)
    assert env.run is None  # start() stopped everything it had started
    assert not docker_client.containers.list(all=True, filters={"name": "-boom"})


def test_a_command_missing_from_the_image_is_reported(
    docker_client: Any, docker_images: Images, tmp_path: Path
) -> None:
    lab_dir = tmp_path / "missing"
    (lab_dir / "services").mkdir(parents=True)
    (lab_dir / "services" / "app.py").write_text("")
    (lab_dir / "lab.toml").write_text(
        '[lab]\ntitle = "Missing"\nchapter = 0\nlearner_files = ["services/app.py"]\n'
        'hints = ["a", "b"]\n\n[services.app]\ncommand = ["no-such-program", "x"]\n'
    )
    env = LabEnvironment(load_lab(lab_dir), backend_name="docker")
    with pytest.raises(ServiceNotReady, match="exited with code 127") as caught:
        env.start()
    assert "exec no-such-program failed" in str(caught.value)  # docker-init's own words
    assert not docker_client.containers.list(all=True, filters={"name": "-app"})


def test_clean_after_a_check_run(docker_client: Any, docker_images: Images) -> None:
    child = start_check(hang=1.0)
    run_id = wait_for_run(docker_client, child)
    output = child.communicate(timeout=120)[0].decode()
    assert child.returncode == 0, output
    assert_clean(docker_client, run_id)


def test_clean_after_a_failed_check(docker_client: Any, docker_images: Images) -> None:
    child = start_check(hang=1.0, PING_LAB_FAIL="1")
    run_id = wait_for_run(docker_client, child)
    output = child.communicate(timeout=120)[0].decode()
    assert child.returncode == 1, output
    assert "2 of 3 checks pass" in output
    assert_clean(docker_client, run_id)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_clean_after_interrupt(
    docker_client: Any, docker_images: Images, sig: signal.Signals
) -> None:
    child = start_check(hang=60.0)
    run_id = wait_for_run(docker_client, child)
    child.send_signal(sig)
    output = child.communicate(timeout=60)[0].decode()
    assert child.returncode == (130 if sig == signal.SIGINT else 143), output
    assert_clean(docker_client, run_id)


def test_kill_9_the_watchdog_removes_the_containers(
    docker_client: Any, docker_images: Images
) -> None:
    child = start_check(hang=60.0)
    run_id = wait_for_run(docker_client, child)
    child.kill()
    child.wait(timeout=10)
    # No next run needed: the watchdog saw its pipe close and removed what the run left.
    assert_gone(docker_client, run_id, timeout=20.0)
    # (Its folder waits for the next start; on a shared machine another run may reap it first.)
    Run.create().close()  # the next start reaps the folder and the registry entry
    assert_clean(docker_client, run_id)


def test_reaper_removes_only_what_is_provably_dead(
    docker_client: Any, docker_images: Images
) -> None:
    # As if a harness and its watchdog had both been killed: its containers and network must
    # go; those of a live run, of another user, of another machine, or without an owner label
    # (nothing proves them dead) must stay.
    live = Run.create()
    me = Owner.me()
    dead = Owner(me.host, me.boot, me.pidns, 2**22 + 13, "1")
    elsewhere = Owner("another-host", me.boot, me.pidns, dead.pid, "1")
    uid = str(os.getuid())
    cases = {
        "deadbeef": {RUN_LABEL: "deadbeef", USER_LABEL: uid, OWNER_LABEL: dead.label()},
        live.id: {RUN_LABEL: live.id, USER_LABEL: uid, OWNER_LABEL: me.label()},
        "0the0user": {RUN_LABEL: "0the0user", USER_LABEL: "4242", OWNER_LABEL: dead.label()},
        "e1sewhere": {RUN_LABEL: "e1sewhere", USER_LABEL: uid, OWNER_LABEL: elsewhere.label()},
        "n0label0": {RUN_LABEL: "n0label0", USER_LABEL: uid},
    }
    made = []
    try:
        for run_id, labels in cases.items():
            network = docker_client.networks.create(f"chaoslab-test-{run_id}", labels=labels)
            container = docker_client.containers.run(
                docker_images.base, ["sleep", "60"], detach=True, labels=labels, init=True
            )
            made += [container, network]
        reap_stale()
        assert labelled(docker_client, "deadbeef") == ([], [])
        for run_id in cases:
            if run_id == "deadbeef":
                continue
            containers, networks = labelled(docker_client, run_id)
            assert len(containers) == 1, f"the reaper removed {run_id}'s container"
            assert networks == [f"chaoslab-test-{run_id}"]
    finally:
        for thing in made:  # what the reaper rightly left, and anything a failure left
            with contextlib.suppress(Exception):
                thing.remove(force=True) if hasattr(thing, "kill") else thing.remove()
        live.close()


@pytest.mark.parametrize("kind", ["network", "container"])
def test_ctrl_c_while_the_engine_creates_leaves_nothing(
    docker_images: Images, ping_lab: Lab, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # Ctrl-C lands while a create request is on its way: the engine finishes the creation after
    # the harness has stopped waiting for the answer. Had the harness listed what to remove
    # before that, the network or container would outlive the run (seen once in CI).
    from docker.models.containers import ContainerCollection
    from docker.models.networks import NetworkCollection

    collection: Any = NetworkCollection if kind == "network" else ContainerCollection
    real = collection.create
    requests: list[threading.Thread] = []

    def in_flight(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer: list[Any] = []
        request = threading.Thread(target=lambda: answer.append(real(self, *args, **kwargs)))
        request.start()
        if not requests:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, once, with the request in flight
        requests.append(request)
        request.join()
        return answer[0]

    monkeypatch.setattr(collection, "create", in_flight)
    env = LabEnvironment(ping_lab, backend_name="docker")
    with pytest.raises(KeyboardInterrupt):
        env.start()
    for request in requests:
        request.join()
    monkeypatch.undo()
    with contextlib.closing(connect()) as client:
        me = Owner.me().label()
        left = [
            thing.name
            for listing in (client.containers.list(all=True), client.networks.list())
            for thing in listing
            if (thing.attrs.get("Labels") or thing.attrs.get("Config", {}).get("Labels") or {}).get(
                OWNER_LABEL
            )
            == me
        ]
    assert left == [], f"left by a Ctrl-C during the {kind} creation: {left}"


def test_ctrl_c_during_the_image_probe_leaves_no_container(
    docker_client: Any, docker_images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Building the base image first runs its python3 in a throwaway container; Ctrl-C while
    # that runs must not leave the container (it is removed only once it has answered).
    from docker.models.containers import Container

    from harness.images import IMAGE_LABEL, _probe_python

    def probes() -> list[str]:
        listed = docker_client.containers.list(all=True, filters={"label": f"{IMAGE_LABEL}=probe"})
        return sorted(c.id for c in listed)

    before = probes()
    real = Container.wait

    def interrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the probe runs: created, not removed
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Container, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _probe_python(docker_client, docker_images.base)
    monkeypatch.undo()
    assert probes() == before
