"""The docker backend on its own: the engine missing, and the published-ports mode of hosts that
cannot route to containers (Docker Desktop, rootless)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import Lab, LabEnvironment, RunError, SetupError
from harness.backends.docker import NOT_RUNNING, PUBLISHED_ENV, DockerBackend, connect
from harness.images import Images
from harness.ports import free_ports
from harness.runs import Run

pytestmark = pytest.mark.docker


@pytest.fixture
def run() -> Iterator[Run]:
    run = Run.create()
    yield run
    run.close()


def test_no_engine_is_a_setup_error_that_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run: Run
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(SetupError, match="Docker is not running") as caught:
        connect(timeout=5)
    assert NOT_RUNNING in str(caught.value)
    with pytest.raises(SetupError, match="--backend process"):
        DockerBackend(run, tmp_path)


def test_published_ports_when_the_host_cannot_route(
    monkeypatch: pytest.MonkeyPatch, docker_images: Images, ping_lab: Lab, run: Run
) -> None:
    monkeypatch.setenv(PUBLISHED_ENV, "1")
    backend = DockerBackend(run, ping_lab.root)
    toxiproxy = None
    try:
        proxy_port, back_port, other = free_ports(3)
        toxiproxy = backend.start_toxiproxy(1, published=[proxy_port])
        assert not backend.direct
        assert toxiproxy.base_url.startswith("http://127.0.0.1:")
        toxiproxy.create_proxy(
            "checks__back", backend.proxy_listen(proxy_port), backend.upstream("back", back_port)
        )
        state = run.dir / "state" / "back"
        state.mkdir(parents=True)
        env = {"HOST": backend.listen_host, "PORT": str(back_port), "STATE_DIR": str(state)}
        handle = backend.start_service(ping_lab.services["back"], env, back_port)
        assert (handle.host, handle.port) == ("127.0.0.1", back_port)
        address = backend.proxy_address(proxy_port, from_checks=True)
        assert address == f"127.0.0.1:{proxy_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://{address}/ping", timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, handle.log_tail()
            time.sleep(0.1)
        direct = backend.direct_address("back", back_port)
        assert httpx.get(f"http://{direct}/ping", timeout=2).json()["count"] == 2
        with pytest.raises(RunError, match="not published"):
            backend.proxy_address(other, from_checks=True)
    finally:
        backend.close()
        if toxiproxy is not None:
            toxiproxy.close()


def test_two_runs_side_by_side_never_collide(docker_images: Images, ping_lab: Lab) -> None:
    with (
        LabEnvironment(ping_lab, backend_name="docker") as one,
        LabEnvironment(ping_lab, backend_name="docker") as two,
    ):
        assert isinstance(one.backend, DockerBackend)
        assert isinstance(two.backend, DockerBackend)
        assert one.backend.network_name != two.backend.network_name
        for env in (one, two):
            answer = httpx.get(f"{env.url('front')}/ping", timeout=5)
            assert answer.json()["count"] == 1  # each run has its own state
