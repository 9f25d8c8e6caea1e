"""The real toxiproxy-server, driven through harness.toxiproxy."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ToxiproxyError
from harness.history import percentile
from harness.ports import HOST, free_ports
from harness.runs import Run
from harness.toxiproxy import Toxic, ToxiproxyServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[ToxiproxyServer]:
    run = Run.create()
    toxiproxy = ToxiproxyServer(run.id, run.dir / "toxiproxy.log").start()
    try:
        yield toxiproxy
    finally:
        toxiproxy.stop()
        run.close()


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on a free port."""
    listener = socket.create_server((HOST, 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


def _round_trip(port: int, timeout: float = 5.0) -> float:
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
    return time.monotonic() - start


def _proxy(server: ToxiproxyServer, echo_port: int) -> int:
    port = free_ports(1)[0]
    server.client.create_proxy("echo", f"{HOST}:{port}", f"{HOST}:{echo_port}")
    return port


def test_server_reports_its_version(server: ToxiproxyServer) -> None:
    assert server.client.version().startswith("2.")


def test_injected_200ms_latency_is_observed_within_tolerance(
    server: ToxiproxyServer, echo_port: int
) -> None:
    port = _proxy(server, echo_port)
    server.client.add_toxic("echo", Toxic("slow", "latency", "downstream", 1.0, {"latency": 200}))
    samples = [_round_trip(port) for _ in range(10)]
    assert 0.195 <= percentile(samples, 50) <= 0.200 + 0.150, samples


def test_disabled_proxy_refuses_and_heals(server: ToxiproxyServer, echo_port: int) -> None:
    port = _proxy(server, echo_port)
    server.client.set_enabled("echo", False)
    with pytest.raises(ConnectionRefusedError):
        _round_trip(port, timeout=1.0)
    server.client.set_enabled("echo", True)
    assert _round_trip(port) < 1.0  # same port after re-enabling: services keep their address


def test_reset_removes_every_toxic(server: ToxiproxyServer, echo_port: int) -> None:
    _proxy(server, echo_port)
    server.client.add_toxic("echo", Toxic("t", "timeout", "upstream", 1.0, {"timeout": 0}))
    server.client.reset()
    assert server.client.proxies()["echo"].toxics == ()


def test_refused_request_is_a_clear_error(server: ToxiproxyServer) -> None:
    with pytest.raises(ToxiproxyError, match="refused"):
        server.client.add_toxic("no-such-proxy", Toxic("t", "latency", "downstream"))


def test_two_servers_in_one_process_do_not_share_state(tmp_path: Path, echo_port: int) -> None:
    runs = [Run.create(), Run.create()]
    servers = [ToxiproxyServer(r.id, r.dir / "t.log").start() for r in runs]
    try:
        _proxy(servers[0], echo_port)
        assert "echo" in servers[0].client.proxies()
        assert servers[1].client.proxies() == {}
    finally:
        for server, run in zip(servers, runs, strict=True):
            server.stop()
            run.close()


def test_a_dead_server_gives_a_clear_error(server: ToxiproxyServer) -> None:
    client = server.client
    server._process.kill()  # type: ignore[union-attr]
    with pytest.raises(ToxiproxyError, match="did not answer"):
        client.version()
