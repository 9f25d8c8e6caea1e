"""HTTP faults in a harness-owned service (the fixture lab's `back`), driven through Faults."""

from __future__ import annotations

import time

import httpx
import pytest

from harness import Faults, LabEnvironment
from harness.faults import HttpControl

pytestmark = pytest.mark.integration


def back(env: LabEnvironment) -> httpx.Response:
    return httpx.get(f"{env.url('back')}/ping", timeout=5)


def test_first_n_requests_get_429_with_retry_after(env: LabEnvironment) -> None:
    with Faults(env).http("back", status=429, retry_after=2, first=2, path="/ping"):
        answers = [back(env) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 200, 200]
    assert answers[0].headers["retry-after"] == "2"


def test_a_share_of_requests_get_503_and_the_fault_heals(env: LabEnvironment) -> None:
    with Faults(env).http("back", status=503, share=0.5):
        codes = [back(env).status_code for _ in range(60)]
    assert 10 <= codes.count(503) <= 50  # seeded: a share, not all and not none
    assert set(codes) == {200, 503}
    assert back(env).status_code == 200


def test_server_side_delay(env: LabEnvironment) -> None:
    with Faults(env).http("back", delay_ms=300):
        start = time.monotonic()
        assert back(env).status_code == 200
        assert time.monotonic() - start >= 0.3


def test_duplicate_delivers_the_same_response_twice(env: LabEnvironment) -> None:
    with Faults(env).http("back", duplicate=True, first=1):
        first, second, third = back(env).json(), back(env).json(), back(env).json()
    assert first == second  # the second request got the first answer again
    assert third["count"] == first["count"] + 1


def test_received_requests_are_recorded(env: LabEnvironment) -> None:
    back(env)
    received = HttpControl(env, "back").received()
    assert received[-1]["path"] == "/ping"


def test_the_record_says_when_the_answer_left(env: LabEnvironment) -> None:
    with Faults(env).http("back", status=503, delay_ms=300, path="/ping"):
        back(env)
    record = HttpControl(env, "back").received()[-1]
    assert isinstance(record["time"], float)
    assert isinstance(record["answered"], float)
    assert record["answered"] - record["time"] >= 0.3  # after the delay the fault asked for


def test_a_rule_can_hit_only_requests_whose_body_has_given_fields(env: LabEnvironment) -> None:
    url = f"{env.url('back')}/ping"
    with Faults(env).http("back", status=503, path="/ping", where={"call_id": "probe-*"}) as ev:
        probe = httpx.post(url, json={"call_id": "probe-3"}, timeout=5)
        other = httpx.post(url, json={"call_id": "lost-1"}, timeout=5)
        no_body = httpx.get(url, timeout=5)
    assert (probe.status_code, other.status_code, no_body.status_code) == (503, 200, 200)
    assert "with call_id=probe-*" in ev.description


def test_reset_clears_rules_left_behind(env: LabEnvironment) -> None:
    HttpControl(env, "back").add({"id": "stray", "status": 500})
    env.reset()
    assert back(env).status_code == 200


def test_learner_services_get_no_http_faults(env: LabEnvironment) -> None:
    with pytest.raises(ValueError, match="learner's service"):
        Faults(env).http("front", status=503)


def test_response_delay_holds_the_answer_after_the_effect(env: LabEnvironment) -> None:
    before = back(env).json()["count"]
    with Faults(env).http("back", response_delay_ms=1500, path="/ping"):
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{env.url('back')}/ping", timeout=0.5)
        time.sleep(0.2)
        # The request was handled at once: the effect is there while the answer is held.
        received = HttpControl(env, "back").received()
        assert received[-1]["path"] == "/ping"
    assert back(env).json()["count"] == before + 2
