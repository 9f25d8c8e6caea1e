"""A check's time is its own: the setup of a scenario its module shares (run in the first
check's setup) is not counted as that check's."""

from __future__ import annotations

import pytest

from harness.cli import _Collector
from harness.lab import Lab
from harness.report import Verdict


def report(when: str, duration: float) -> pytest.TestReport:
    return pytest.TestReport(
        "tests/test_x.py::test_1_first",
        ("x", 1, "test_1_first"),
        {},
        "passed",
        None,
        when,
        duration=duration,
    )


def test_only_the_checks_own_call_counts(ping_lab: Lab) -> None:
    verdict = Verdict("ping", False, 1)
    collector = _Collector(verdict, ping_lab)
    for when, took in (("setup", 9.0), ("call", 0.25), ("teardown", 0.5)):
        collector.pytest_runtest_logreport(report(when, took))
    (check,) = verdict.checks
    assert check.duration == 0.25
