"""Crash points: a service dies at a point in its own execution, the same point every run."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from harness import Faults, LabEnvironment

pytestmark = pytest.mark.integration


def saved_steps(env: LabEnvironment) -> list[int]:
    assert env.run is not None
    database = env.run.dir / "state" / "front" / "front.db"
    with sqlite3.connect(database) as db:
        return [step for (step,) in db.execute("SELECT step FROM saved ORDER BY rowid")]


def clear_saved(env: LabEnvironment) -> None:
    assert env.run is not None
    with sqlite3.connect(env.run.dir / "state" / "front" / "front.db") as db:
        db.execute("DELETE FROM saved")


def save(env: LabEnvironment) -> httpx.Response | None:
    try:
        return httpx.post(f"{env.url('front')}/save", timeout=5)
    except httpx.TransportError:
        return None


@pytest.mark.parametrize(("nth", "kept"), [(1, [1]), (2, [1, 2])])
def test_a_service_dies_right_after_its_nth_commit(
    env: LabEnvironment, nth: int, kept: list[int]
) -> None:
    clear_saved(env)
    faults = Faults(env)
    with faults.crash_after_commit("front", nth=nth) as point:
        assert save(env) is None  # the connection dies with the service: no answer
        assert point.wait(timeout=5)
        assert env.backend.handle("front").exit_code() is not None
    assert saved_steps(env) == kept  # committed before the crash, and nothing after
    assert env.backend.handle("front").exit_code() is None  # restarted on exit
    answer = save(env)
    assert answer is not None
    assert answer.status_code == 200  # not armed any more
    assert "right after its" in faults.timeline.events[0].description


def test_a_point_never_reached_leaves_the_service_alone(env: LabEnvironment) -> None:
    faults = Faults(env)
    pid_before = env.backend.handle("front").exit_code()
    with faults.crash_after_commit("front", nth=1) as point:
        assert not point.wait(timeout=0.3)
    assert not point.fired
    assert pid_before is None
    assert env.backend.handle("front").exit_code() is None
    assert "never reached" in faults.timeline.events[0].description
    answer = save(env)
    assert answer is not None
    assert answer.status_code == 200  # disarmed on exit


def back_count(env: LabEnvironment) -> int:
    assert env.run is not None
    return int((env.run.dir / "state" / "back" / "count").read_text())


@pytest.mark.parametrize(("when", "effect"), [("before", 0), ("after", 1)])
def test_a_harness_service_dies_on_its_nth_request(
    env: LabEnvironment, when: str, effect: int
) -> None:
    faults = Faults(env)
    url = f"{env.url('back')}/ping"
    with faults.http("back", path="/ping", nth=2, crash=when):  # type: ignore[arg-type]
        first = httpx.get(url, timeout=5).json()["count"]  # request 1 of the rule: served
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=5)
        assert back_count(env) == first + effect  # "after": handled, then died unanswered
        assert died(env, "back")
    faults.restart("back")
    assert httpx.get(url, timeout=5).json()["count"] == first + effect + 1


def died(env: LabEnvironment, service: str, within: float = 5.0) -> bool:
    """Whether `service` has exited, waiting a little: the client sees the connection drop
    while the process is still being torn down."""
    deadline = time.monotonic() + within
    while env.backend.handle(service).exit_code() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_bad_crash_rules_are_refused(env: LabEnvironment) -> None:
    with pytest.raises(ValueError, match="before"):
        Faults(env).http("back", crash="during")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="counts from 1"):
        Faults(env).http("back", crash="after", nth=0)


def ping_back(env: LabEnvironment) -> httpx.Response | None:
    try:
        return httpx.get(f"{env.url('back')}/ping", timeout=5)
    except httpx.TransportError:
        return None


def test_a_service_dies_right_after_it_empties_a_file_to_rewrite_it(env: LabEnvironment) -> None:
    ping_back(env)  # back rewrites its count file in place on every ping
    faults = Faults(env)
    with faults.crash_after_truncate("back", nth=1) as point:
        assert ping_back(env) is None
        assert point.wait(timeout=5)
        count = env.state_dir("back") / "count"
        assert count.read_text() == ""  # torn: emptied, never rewritten
        count.write_text("7")  # repaired by hand before it comes back
    answer = ping_back(env)
    assert answer is not None
    assert answer.json()["count"] == 8
    assert "right after its 1st emptying of a file" in faults.timeline.events[0].description
