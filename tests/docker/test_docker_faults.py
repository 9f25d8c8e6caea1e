"""Faults on the fixture lab `ping` running as containers: the docker twin of
tests/integration/test_faults.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import Faults, Lab, LabEnvironment
from harness.backends.docker import DockerBackend
from harness.images import Images

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def running(ping_lab: Lab, docker_images: Images) -> Iterator[LabEnvironment]:
    with LabEnvironment(ping_lab, seed=1, backend_name="docker") as env:
        yield env


@pytest.fixture
def env(running: LabEnvironment) -> Iterator[LabEnvironment]:
    running.reset()
    yield running
    running.reset()


def backend(env: LabEnvironment) -> DockerBackend:
    assert isinstance(env.backend, DockerBackend)
    return env.backend


def ping(env: LabEnvironment, timeout: float = 3.0) -> httpx.Response:
    return httpx.get(f"{env.url('front')}/ping", timeout=timeout)


def started_at(env: LabEnvironment, service: str) -> str:
    container = backend(env).handle(service).container
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def test_services_reach_each_other_by_name_through_proxies(env: LabEnvironment) -> None:
    assert ping(env).status_code == 200
    proxies = env.toxiproxy.proxies()
    assert set(proxies) == {"checks__front", "checks__back", "front__back"}
    assert proxies["front__back"].upstream.startswith("back:")
    port = proxies["front__back"].listen.rsplit(":", 1)[1]
    assert env.env_for("front")["BACK_URL"] == f"http://toxiproxy:{port}"


def test_the_run_has_its_own_network_and_labelled_containers(env: LabEnvironment) -> None:
    assert env.run is not None
    docker = backend(env)
    network = docker._client.networks.get(docker.network_name)
    assert network.attrs["Labels"]["chaoslab.run"] == env.run.id
    label = {"label": f"chaoslab.run={env.run.id}"}
    names = {c.name for c in docker._client.containers.list(filters=label)}
    assert names == {f"chaoslab-{env.run.id}-{n}" for n in ("toxiproxy", "front", "back")}


def test_state_dir_is_the_same_path_inside(env: LabEnvironment) -> None:
    count = httpx.get(f"{env.url('back')}/ping", timeout=3).json()["count"]
    state = Path(env.env_for("back")["STATE_DIR"])
    assert (state / "count").read_text() == str(count)  # written by the container, read here


def test_direct_url_reaches_the_service_without_proxy(env: LabEnvironment) -> None:
    with Faults(env).down("checks -> back"):
        assert httpx.get(f"{env.direct_url('back')}/ping", timeout=3).status_code == 200


def test_two_way_partition_blocks_and_heals(env: LabEnvironment) -> None:
    faults = Faults(env)
    with faults.partition(["front"], ["back"]):
        answer = ping(env)
        assert answer.status_code == 502  # front's own 1 s timeout fired
        assert answer.json()["error"] == "ReadTimeout"
    assert ping(env).status_code == 200
    assert [e.end is not None for e in faults.timeline.events] == [True]


def test_one_way_partition_drops_only_one_direction(env: LabEnvironment) -> None:
    with Faults(env).partition(["back"], ["front"], one_way=True):
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


def test_link_down_on_a_checks_link_refuses_as_on_processes(env: LabEnvironment) -> None:
    if not backend(env).direct:
        pytest.skip("through published ports Docker's userland proxy accepts, then closes")
    with Faults(env).down("checks -> front"), pytest.raises(httpx.ConnectError):
        ping(env)
    assert ping(env).status_code == 200


def test_latency_is_applied(env: LabEnvironment) -> None:
    with Faults(env).latency("front -> back", 300):
        start = time.monotonic()
        assert ping(env).status_code == 200
        took = time.monotonic() - start
    assert 0.3 <= took < 1.0


def test_crash_and_restart_keeps_state_port_and_env(env: LabEnvironment) -> None:
    first = ping(env).json()
    before = started_at(env, "back")
    with Faults(env).crash("back"):
        assert ping(env).status_code == 502
        assert backend(env).handle("back").exit_code() == 137  # SIGKILL
    second = ping(env).json()
    assert started_at(env, "back") != before  # the same container, started again
    assert second["count"] == first["count"] + 1  # the state file survived the crash
    attrs = backend(env).handle("back").container.attrs
    assert f"PORT={env.env_for('back')['PORT']}" in attrs["Config"]["Env"]


def test_pause_and_resume(env: LabEnvironment) -> None:
    with Faults(env).pause("back"):
        assert env.backend.is_paused("back")
        container = backend(env).handle("back").container
        container.reload()
        assert container.status == "paused"
        assert ping(env).status_code == 502  # a frozen container accepts nothing in time
    assert not env.backend.is_paused("back")
    assert ping(env).status_code == 200


def test_crash_while_paused(env: LabEnvironment) -> None:
    with Faults(env).pause("back"):
        env.backend.crash("back")
        assert backend(env).handle("back").exit_code() == 137
    env.reset()
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


def test_power_loss_loses_what_was_never_fsynced(env: LabEnvironment) -> None:
    with Faults(env).crash("back"):  # a new life: what is on disk now counts as durable
        (env.state_dir("back") / "count").write_text("40")
    ping(env)
    assert ping(env).json()["count"] == 42  # back writes its count without an fsync
    with Faults(env).power_loss("back") as event:
        assert (env.state_dir("back") / "count").read_text() == "40"
    assert "count back to its last fsync (2 bytes)" in event.description
    assert ping(env).json()["count"] == 41


def test_a_deploy_restarts_each_container_with_the_new_release_and_keeps_its_output(
    env: LabEnvironment,
) -> None:
    before = len(env.log_lines("back"))
    assert ping(env).status_code == 200

    ((name, stopped),) = Faults(env).rolling_restart(["back"], grace=3.0, env={"RELEASE": "2"})

    assert name == "back"
    assert not stopped.killed
    assert ping(env).status_code == 200  # the new container answers through the same proxy
    container = backend(env).handle("back").container
    container.reload()
    assert "RELEASE=2" in container.attrs["Config"]["Env"]
    assert len(env.log_lines("back")) >= before  # the replaced container's lines are kept
