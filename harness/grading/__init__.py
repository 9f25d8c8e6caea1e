"""Grading a class: each lab of a submission run with the instructor's checks, harness and
harness-owned services, the student's learner files laid in; scores in the formats graders
read (`chaoslab grade`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.grading.results import CheckGrade, LabGrade, write_exercism, write_junit, write_scores
from harness.grading.runs import Tally, repeat
from harness.grading.submission import (
    Change,
    compare,
    graded_copy,
    missing_learner_files,
    submitted_lab,
)
from harness.lab import Lab

__all__ = [
    "Change",
    "LabGrade",
    "grade_lab",
    "grades_from_tally",
    "write_exercism",
    "write_junit",
    "write_scores",
]


def grades_from_tally(lab: Lab, tally: Tally) -> list[CheckGrade]:
    return [
        CheckGrade(name, lab.points.get(name, 1), t, tally.runs) for name, t in tally.checks.items()
    ]


def grade_lab(
    lab: Lab,
    submission: Path,
    seeds: list[int],
    backend: str = "process",
    progress: Callable[[int, dict[str, object]], None] | None = None,
) -> LabGrade:
    """Grade the submission's copy of `lab` once per seed."""
    grade = LabGrade(lab.slug, lab.title)
    theirs = submitted_lab(lab, submission)
    if theirs is None:
        grade.error = (
            f"the submission has no folder for this lab (looked for labs/{lab.slug} and "
            f"{lab.slug} in {submission})"
        )
        return grade
    missing = missing_learner_files(lab, theirs)
    if missing:
        grade.error = f"the submission's {theirs} lacks {', '.join(missing)}"
        return grade
    grade.changes = compare(lab, theirs)
    with tempfile.TemporaryDirectory(prefix="chaoslab-graded-") as tmp:
        copy = graded_copy(lab, theirs, grade.changes, Path(tmp))
        tally = repeat(copy, seeds, backend, progress=progress)
    grade.seeds = tally.seeds
    grade.run_errors = tally.errors
    grade.checks = grades_from_tally(lab, tally)
    if not grade.checks:
        grade.error = tally.errors[-1] if tally.errors else "no check ran"
    return grade
