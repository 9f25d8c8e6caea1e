"""Request lines: every request a Python service served is written beside its log, for
`chaoslab logs`, while the service's own output (which checks may judge) stays its own."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from harness import LabEnvironment

pytestmark = pytest.mark.integration


def request_lines(env: LabEnvironment, service: str) -> list[str]:
    assert env.run is not None
    path = env.run.dir / "logs" / f"{service}.requests.log"
    return path.read_text().splitlines() if path.exists() else []


def test_a_services_requests_are_written_beside_its_log_not_in_it(env: LabEnvironment) -> None:
    answer = httpx.get(f"{env.url('front')}/ping", timeout=5)
    assert answer.status_code == 200
    deadline = time.monotonic() + 5
    while not any("GET /ping -> 200" in line for line in request_lines(env, "front")):
        assert time.monotonic() < deadline, request_lines(env, "front")
        time.sleep(0.05)

    line = next(x for x in request_lines(env, "front") if "GET /ping" in x)
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} GET /ping -> 200$", line)  # stamped like every line
    assert not any("/ping" in x for x in env.log_lines("front"))  # uvicorn stays at warning
