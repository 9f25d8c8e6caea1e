"""`chaoslab grade` and `chaoslab check --repeat N`: what they print and write."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness._errors import UsageError
from harness.grading import (
    LabGrade,
    grade_lab,
    grades_from_tally,
    write_exercism,
    write_junit,
    write_scores,
)
from harness.grading.runs import repeat
from harness.lab import Lab, catalogue, find_lab


def seeds_for(count: int, seed: int | None) -> list[int]:
    """`count` seeds: from `seed` on when given (a replay), else fresh ones."""
    if seed is not None:
        return [seed + i for i in range(count)]
    return [int.from_bytes(os.urandom(3), "big") for _ in range(count)]


def _output_folder(value: str) -> Path:
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {value}: that is a file.\n  Fix: give a folder for the results.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".chaoslab-write-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--out {value}: cannot write there ({exc.strerror or exc}).\n  Fix: choose a "
            "folder you can write to."
        ) from None
    return out


def _labs(names: list[str]) -> list[Lab]:
    return [find_lab(name) for name in names] if names else catalogue()


def _submission(value: str | None) -> Path:
    if value is None:
        return Path.cwd()
    path = Path(value)
    if not path.is_dir():
        raise UsageError(
            f"--submission {value}: no such folder.\n  Fix: give the student's repository "
            "(the folder that holds labs/)."
        )
    return path.resolve()


def grade(
    names: list[str], out: str, submission: str | None, runs: int, seed: int | None, backend: str
) -> int:
    """Grade the labs; 0 when grading ran, whatever the score (2 is raised as an error)."""
    folder = _output_folder(out)
    labs = _labs(names)
    where = _submission(submission)
    grades: list[LabGrade] = []
    for lab in labs:
        print(f"grading {lab.slug} ({runs} run{'s' if runs > 1 else ''})...", flush=True)
        grade = grade_lab(lab, where, seeds_for(runs, seed), backend)
        grades.append(grade)
        (folder / lab.slug).mkdir(exist_ok=True)
        write_exercism(grade, folder / lab.slug / "results.json")
        _print_grade(grade)
    write_junit(grades, folder / "junit.xml")
    write_scores(grades, folder / "scores.json")
    points, most = sum(g.points for g in grades), sum(g.max_points for g in grades)
    print(f"\n{points} of {most} points over {len(grades)} lab(s).")
    print(f"Written: {folder / 'scores.json'}, {folder / 'junit.xml'}, <lab>/results.json")
    return 0


def _print_grade(grade: LabGrade) -> None:
    if grade.error:
        print(f"  {grade.slug}: could not be graded: {grade.error.splitlines()[0]}")
    else:
        print(f"  {grade.slug}: {grade.points} of {grade.max_points} points")
        for check in grade.checks:
            mark = "ok  " if check.passed else "FAIL"
            rate = f"{check.tally.passes}/{check.of_runs}"
            print(f"    {mark} {check.name} ({rate} runs, {check.points} pt)")
    if grade.changes:
        print("    changed outside the learner's files (graded with the instructor's copy):")
        for change in grade.changes:
            print(f"      {change}")
    for error in grade.run_errors:
        print(f"    a run gave no verdict: {error.splitlines()[0]}")


def check_repeatedly(
    lab_name: str, runs: int, seed: int | None, backend: str, solution: bool
) -> int:
    """`check --repeat N`: each check's pass rate over N runs with fresh seeds; exit 0 when
    every check passed every run, 1 when one did not, 2 when a run gave no verdict."""
    lab = find_lab(lab_name)
    seeds = seeds_for(runs, seed)
    which = "the reference solution" if solution else "your code"
    print(f"Checking {which} of '{lab.slug}' {runs} times, each with a fresh seed...", flush=True)

    def progress(i: int, verdict: dict[str, object]) -> None:
        ok = (
            "could not run"
            if verdict.get("setup_error")
            else ("pass" if verdict.get("ok") else "fail")
        )
        print(f"  run {i + 1}/{runs} (seed {seeds[i]}): {ok}", flush=True)

    tally = repeat(lab.root, seeds, backend, solution=solution, progress=progress)
    checks = grades_from_tally(lab, tally)
    width = max((len(c.name) for c in checks), default=0)
    print()
    for check in checks:
        flaky = " <- not every run" if 0 < check.tally.passes < check.of_runs else ""
        print(f"  {check.name.ljust(width)}  passed {check.tally.passes}/{check.of_runs}{flaky}")
    for error in tally.errors:
        print(f"  no verdict: {error.splitlines()[0]}", file=sys.stderr)
    if tally.errors:
        return 2
    return 0 if checks and all(c.passed for c in checks) else 1
