"""harness.waiting: phases that last until what a check needs was recorded. Upper bounds on
time are loose (a busy machine) and far under the timeout they tell apart."""

import itertools
import time

from harness import hold, wait_until


def test_wait_until_returns_as_soon_as_the_condition_holds() -> None:
    looks = itertools.count(1)
    began = time.monotonic()
    assert wait_until(lambda: next(looks) >= 3, timeout=30.0, every=0.01)
    assert time.monotonic() - began < 10.0


def test_wait_until_gives_up_at_the_timeout() -> None:
    began = time.monotonic()
    assert not wait_until(lambda: False, timeout=0.2, every=0.05)
    assert 0.2 <= time.monotonic() - began < 10.0


def test_wait_until_looks_once_more_at_the_deadline() -> None:
    deadline = time.monotonic() + 0.1
    assert wait_until(lambda: time.monotonic() >= deadline, timeout=0.1, every=1.0)


def test_hold_lasts_at_least_its_minimum_even_when_the_condition_holds() -> None:
    since = time.monotonic()
    assert hold(since, at_least=0.2, until=lambda: True, at_most=5.0)
    assert time.monotonic() - since >= 0.2


def test_hold_goes_on_until_the_condition_holds() -> None:
    since = time.monotonic()
    ready = since + 0.3
    assert hold(since, at_least=0.1, until=lambda: time.monotonic() >= ready, at_most=30.0)
    assert 0.3 <= time.monotonic() - since < 10.0


def test_hold_ends_at_its_maximum_and_says_so() -> None:
    since = time.monotonic()
    assert not hold(since, at_least=0.1, until=lambda: False, at_most=0.3)
    assert 0.3 <= time.monotonic() - since < 10.0


def test_hold_counts_from_when_the_phase_began() -> None:
    since = time.monotonic() - 10.0  # began 10 s ago: its minimum is long over
    began = time.monotonic()
    assert hold(since, at_least=5.0, until=lambda: True, at_most=30.0)
    assert time.monotonic() - began < 2.5  # not another 5 s from now
