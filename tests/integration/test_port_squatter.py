"""Another run's program (a Jaeger answers 200 on any path) may take a port this run chose
before its service binds it: the service must not be taken as ready on that program's answer.
The service fails to bind, and the run starts again on new ports."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness import LabEnvironment, load_lab
from harness import environment as environment_module
from harness.ports import HOST
from tests.conftest import FIXTURE_LABS

pytestmark = pytest.mark.integration


class _AnswersEverything(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"not the service")

    def log_message(self, *args: object) -> None:
        pass


def test_a_squatted_service_port_starts_the_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = ThreadingHTTPServer((HOST, 0), _AnswersEverything)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    taken = squatter.server_address[1]
    real = environment_module.free_ports
    calls: list[list[int]] = []

    def first_port_taken(count: int) -> list[int]:
        ports = real(count)
        if not calls:
            ports[0] = taken  # the first service's
        calls.append(ports)
        return ports

    monkeypatch.setattr(environment_module, "free_ports", first_port_taken)
    lab = load_lab(FIXTURE_LABS / "ping")
    first = next(iter(lab.services))
    try:
        with LabEnvironment(lab, seed=1) as env:
            assert len(calls) == 2  # started again, on new ports
            assert env.direct_url(first) != f"http://{HOST}:{taken}"
            answer = httpx.get(f"{env.direct_url(first)}/health", timeout=5)
            assert answer.text != "not the service"
    finally:
        squatter.shutdown()
        squatter.server_close()
