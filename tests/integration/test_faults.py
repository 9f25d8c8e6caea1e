"""Faults on a running lab (the fixture lab `ping`), with real processes and real Toxiproxy."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from harness import Faults, Lab, LabEnvironment
from harness.lab import Readiness, ServiceSpec
from harness.ports import free_ports

pytestmark = pytest.mark.integration


def ping(env: LabEnvironment, timeout: float = 3.0) -> httpx.Response:
    return httpx.get(f"{env.url('front')}/ping", timeout=timeout)


def test_services_reach_each_other_through_proxies(env: LabEnvironment) -> None:
    assert ping(env).status_code == 200
    proxies = env.toxiproxy.proxies()
    assert set(proxies) == {"checks__front", "checks__back", "front__back"}
    front_env = env.env_for("front")
    assert front_env["BACK_URL"].endswith(proxies["front__back"].listen.rsplit(":", 1)[1])


def test_two_way_partition_blocks_and_heals(env: LabEnvironment) -> None:
    faults = Faults(env)
    with faults.partition(["front"], ["back"]):
        answer = ping(env)
        assert answer.status_code == 502  # front's own 1 s timeout fired
        assert answer.json()["error"] == "ReadTimeout"
    assert ping(env).status_code == 200
    assert [e.end is not None for e in faults.timeline.events] == [True]


def test_one_way_partition_drops_only_one_direction(env: LabEnvironment) -> None:
    faults = Faults(env)
    with faults.partition(["back"], ["front"], one_way=True):
        # back's answers to front are dropped: front times out though back got the request.
        before = httpx.get(f"{env.url('back')}/ping").json()["count"]
        assert ping(env).status_code == 502
        after = httpx.get(f"{env.url('back')}/ping").json()["count"]
        assert after == before + 2
    assert ping(env).status_code == 200


def test_link_down_refuses_and_heals(env: LabEnvironment) -> None:
    with Faults(env).down("front -> back"):
        answer = ping(env)
        assert answer.status_code == 502
        assert answer.json()["error"] == "ConnectError"
    assert ping(env).status_code == 200


def test_crash_and_restart_keeps_state(env: LabEnvironment) -> None:
    first = ping(env).json()
    with Faults(env).crash("back"):
        assert ping(env).status_code == 502
        assert env.backend.handle("back").exit_code() is not None
    second = ping(env).json()
    assert second["pid"] != first["pid"]
    assert second["count"] == first["count"] + 1  # the state file survived the crash


def test_a_rolling_restart_asks_each_service_to_stop_then_starts_it_again(
    env: LabEnvironment,
) -> None:
    first = ping(env).json()
    faults = Faults(env)

    stops = faults.rolling_restart(["back"], grace=3.0)

    ((name, stopped),) = stops
    assert name == "back"
    assert not stopped.killed  # uvicorn shuts down on SIGTERM, well within its grace
    assert stopped.code in (0, -15)  # uvicorn raises SIGTERM again once it is done
    second = ping(env).json()
    assert second["pid"] != first["pid"]  # a new process, ready before the call returned
    (event,) = faults.timeline.events
    assert event.description.startswith("rolling restart: back exited")
    assert event.end is not None


def test_a_deploy_restarts_each_service_with_its_new_release(env: LabEnvironment) -> None:
    faults = Faults(env)

    faults.rolling_restart(["back"], grace=3.0, env={"RELEASE": "2"})

    pid = env.backend.handle("back").pid
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"RELEASE=2" in environ
    assert b"SERVICE_NAME=back" in environ  # the rest of its environment is as it was
    assert ping(env).status_code == 200
    assert faults.timeline.events[0].description.startswith("deploy RELEASE=2: back exited")
    env.backend.restart("back", {"RELEASE": "1"})  # as the other tests expect it
    env.wait_ready("back")


def test_a_service_that_ignores_sigterm_is_killed_when_its_grace_ends(
    env: LabEnvironment,
) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    spec = ServiceSpec("stubborn", ("python", "-c", stubborn), Readiness(kind="port", path=""))
    env.backend.start_service(spec, {"PATH": os.environ["PATH"]}, free_ports(1)[0])
    time.sleep(0.5)  # its interpreter is up and ignores SIGTERM

    stopped = env.backend.terminate("stubborn", grace=0.5)

    assert stopped.killed
    assert stopped.took >= 0.5
    assert env.backend.handle("stubborn").exit_code() == -signal.SIGKILL


def test_a_check_can_change_a_stopped_services_files(env: LabEnvironment) -> None:
    ping(env)
    with Faults(env).crash("back"):
        (env.state_dir("back") / "count").write_text("41")  # what a torn-log check does
    assert ping(env).json()["count"] == 42
    with pytest.raises(ValueError, match="no service 'nope'"):
        env.state_dir("nope")


def test_pause_and_resume(env: LabEnvironment) -> None:
    with Faults(env).pause("back"):
        assert ping(env).status_code == 502  # a frozen process accepts nothing in time
    assert ping(env).status_code == 200


def test_fault_heals_even_when_the_body_raises(env: LabEnvironment) -> None:
    faults = Faults(env)
    with pytest.raises(RuntimeError), faults.latency("front -> back", 2000):
        raise RuntimeError("the check blew up")
    assert env.toxiproxy.proxies()["front__back"].toxics == ()
    start = time.monotonic()
    assert ping(env).status_code == 200
    assert time.monotonic() - start < 1.0


def test_reset_restarts_a_crashed_service(env: LabEnvironment) -> None:
    Faults(env).kill("back")
    env.reset()
    assert ping(env).status_code == 200


def test_a_port_taken_before_the_service_binds_it_is_retried_on_new_ports(
    ping_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run takes the port chosen for `front` between the choice and the bind.
    from harness import environment, ports

    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind((ports.HOST, 0))
    squatter.listen()
    calls = []

    def racy_free_ports(count: int) -> list[int]:
        chosen = ports.free_ports(count)
        calls.append(chosen)
        return [squatter.getsockname()[1], *chosen[1:]] if len(calls) == 1 else chosen

    monkeypatch.setattr(environment, "free_ports", racy_free_ports)
    try:
        with LabEnvironment(ping_lab, seed=1) as env:
            assert len(calls) == 2, "the start should have been retried once"
            answer = httpx.get(f"{env.url('front')}/ping", timeout=5)
            assert answer.status_code == 200
    finally:
        squatter.close()


def test_power_loss_loses_what_was_never_fsynced(env: LabEnvironment) -> None:
    with Faults(env).crash("back"):  # a new life: what is on disk now counts as durable
        (env.state_dir("back") / "count").write_text("40")
    ping(env)
    assert ping(env).json()["count"] == 42  # back writes its count without an fsync
    with Faults(env).power_loss("back") as event:
        assert (env.state_dir("back") / "count").read_text() == "40"
    assert "count back to its last fsync (2 bytes)" in event.description
    assert ping(env).json()["count"] == 41
