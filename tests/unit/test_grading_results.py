"""harness.grading.results: a grade in JUnit XML, JSON scores and Exercism's results.json."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.grading.results import (
    CheckGrade,
    LabGrade,
    exercism_results,
    write_junit,
    write_scores,
)
from harness.grading.runs import CheckTally
from harness.grading.submission import Change


def check(name: str, points: int, passes: int, runs: int = 3) -> CheckGrade:
    return CheckGrade(name, points, CheckTally(name, runs, passes, "lost a charge", 1.5), runs)


def test_a_check_earns_its_points_only_if_it_passed_every_run() -> None:
    grade = LabGrade("lab", "A lab", [check("test_1_a", 3, 3), check("test_2_b", 2, 2)])

    assert grade.points == 3
    assert grade.max_points == 5
    assert grade.status == "fail"
    assert grade.checks[1].task_id == 2


def test_a_run_without_verdict_counts_against_every_check() -> None:
    flaky = CheckGrade("test_1_a", 1, CheckTally("test_1_a", 2, 2), of_runs=3)

    assert not flaky.passed


def test_exercism_results_follow_version_3() -> None:
    grade = LabGrade("lab", "A lab", [check("test_1_a", 1, 3), check("test_2_b", 1, 0)])

    results = exercism_results(grade)

    assert results == {
        "version": 3,
        "status": "fail",
        "tests": [
            {"name": "test_1_a", "status": "pass", "task_id": 1},
            {"name": "test_2_b", "status": "fail", "message": "lost a charge", "task_id": 2},
        ],
    }
    errored = exercism_results(LabGrade("lab", "A lab", error="the lab is missing"))
    assert errored == {"version": 3, "status": "error", "message": "the lab is missing"}


def test_junit_and_scores_cover_every_lab(tmp_path: Path) -> None:
    good = LabGrade("one", "One", [check("test_1_a", 2, 3)], [Change("lab.toml", "changed")])
    missing = LabGrade("two", "Two", error="no folder labs/two\nsecond line")

    write_junit([good, missing], tmp_path / "junit.xml")
    write_scores([good, missing], tmp_path / "scores.json")

    suites = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["one", "two"]
    assert suites[0].get("failures") == "0"
    assert "lab.toml changed" in (suites[0].findtext("system-out") or "")
    error = suites[1].find("testcase/error")
    assert error is not None
    assert error.get("message") == "no folder labs/two"
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert (scores["points"], scores["max_points"]) == (2, 2)
    assert [lab["status"] for lab in scores["labs"]] == ["pass", "error"]
