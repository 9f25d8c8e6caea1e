"""The seeded fault schedule: reproducible, composable, always healing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.nemesis import Schedule

LOG: list[str] = []


def recording(name: str):  # a FaultMaker that logs enter and exit
    @contextmanager
    def make(faults: object) -> Iterator[None]:
        LOG.append(f"+{name}")
        try:
            yield
        finally:
            LOG.append(f"-{name}")

    return make


MENU = {"a": recording("a"), "b": recording("b"), "c": recording("c")}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_same_seed_same_schedule() -> None:
    one = Schedule.random(42, MENU, total=10)
    two = Schedule.random(42, MENU, total=10)
    assert str(one) == str(two)
    assert one.names() == two.names()


def test_other_seed_other_schedule() -> None:
    assert str(Schedule.random(1, MENU, total=10)) != str(Schedule.random(2, MENU, total=10))


def test_steps_fit_the_total_and_do_not_overlap() -> None:
    schedule = Schedule.random(7, MENU, total=5, hold=(0.3, 1.0), gap=(0.2, 0.6))
    assert schedule.steps
    assert schedule.duration <= 5
    for before, after in zip(schedule.steps, schedule.steps[1:], strict=False):
        assert before.at + before.hold <= after.at


def test_the_seed_is_printed_with_the_plan() -> None:
    text = str(Schedule.random(99, MENU, total=3))
    assert "seed 99" in text
    assert "t=" in text


def test_run_enters_and_heals_each_step_in_order() -> None:
    LOG.clear()
    fake = FakeTime()
    schedule = Schedule.of((0.5, 1.0, "a", MENU["a"]), (2.0, 0.5, "b", MENU["b"]))
    schedule.run(None, clock=fake.clock, sleep=fake.sleep)  # type: ignore[arg-type]
    assert LOG == ["+a", "-a", "+b", "-b"]
    assert fake.now == pytest.approx(2.5)


def test_a_fault_is_healed_when_the_run_is_interrupted() -> None:
    LOG.clear()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    schedule = Schedule.of((0.0, 1.0, "a", MENU["a"]))
    with pytest.raises(KeyboardInterrupt):
        schedule.run(None, sleep=interrupted)  # type: ignore[arg-type]
    assert LOG == ["+a", "-a"]


def test_schedules_compose_in_sequence() -> None:
    first = Schedule.of((0.0, 1.0, "a", MENU["a"]))
    second = Schedule.of((0.5, 1.0, "b", MENU["b"]))
    both = first + second
    assert [(s.at, s.name) for s in both.steps] == [(0.0, "a"), (1.5, "b")]


def test_an_empty_menu_is_an_error() -> None:
    with pytest.raises(ValueError, match="menu"):
        Schedule.random(1, {}, total=5)
