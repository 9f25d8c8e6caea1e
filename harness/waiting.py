"""Waiting on what the harness recorded, not on the clock alone: a check's phase lasts as long
as it takes to hold what the check needs, so a busy machine makes a run slower, never a
verdict wrong."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL = 0.05  # seconds between two looks at a condition


def wait_until(condition: Callable[[], bool], timeout: float, every: float = POLL) -> bool:
    """Look at `condition` every `every` seconds until it holds (True) or `timeout` seconds
    have passed (False). It is looked at once more at the deadline, so a condition that came
    true in the last sleep is not missed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(every, left))


def hold(
    since: float,
    at_least: float,
    until: Callable[[], bool],
    at_most: float,
    every: float = POLL,
) -> bool:
    """Keep a phase that began at `since` (a time.monotonic()) for `at_least` seconds, and then
    on until `until` holds, for at most `at_most` seconds in all. True if `until` held: a
    caller that gets False knows the phase ended without what it waited for."""
    time.sleep(max(0.0, since + at_least - time.monotonic()))
    return wait_until(until, max(0.0, since + at_most - time.monotonic()), every)
