"""A class's grades in the formats graders read: JUnit XML (any CI), a JSON score per lab and
overall, and Exercism's results.json (version 3) per lab."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness.files import write_atomically
from harness.grading.runs import CheckTally
from harness.grading.submission import Change

_NUMBER = re.compile(r"^test_(\d+)_")


@dataclass
class CheckGrade:
    """One check of one lab: its points, and how it did over the runs."""

    name: str
    points: int
    tally: CheckTally
    of_runs: int  # the runs made; one without a verdict counts against every check

    @property
    def passed(self) -> bool:
        """Passed in every run: a check that passes only sometimes earns nothing."""
        return self.of_runs > 0 and self.tally.passes == self.of_runs

    @property
    def earned(self) -> int:
        return self.points if self.passed else 0

    @property
    def task_id(self) -> int | None:
        match = _NUMBER.match(self.name)
        return int(match.group(1)) if match else None


@dataclass
class LabGrade:
    """A lab's grade: its checks, what the submission changed, and why it could not run."""

    slug: str
    title: str
    checks: list[CheckGrade] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    error: str = ""  # no verdict at all: the lab is missing, or no run gave a verdict
    run_errors: list[str] = field(default_factory=list)  # runs without a verdict
    seeds: list[int] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(c.earned for c in self.checks)

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def status(self) -> str:
        if self.error or not self.checks:
            return "error"
        return "pass" if all(c.passed for c in self.checks) else "fail"

    def to_json(self) -> dict[str, object]:
        return {
            "lab": self.slug,
            "title": self.title,
            "status": self.status,
            "points": self.points,
            "max_points": self.max_points,
            "score": round(self.points / self.max_points, 4) if self.max_points else 0.0,
            "error": self.error,
            "seeds": self.seeds,
            "runs_without_verdict": self.run_errors,
            "checks": [
                {
                    "name": c.name,
                    "points": c.points,
                    "earned": c.earned,
                    "passes": c.tally.passes,
                    "runs": c.of_runs,
                    "message": "" if c.passed else c.tally.message,
                }
                for c in self.checks
            ],
            "changed_outside_your_files": [
                {"path": c.path, "what": c.what, "used": c.used} for c in self.changes
            ],
        }


def write_scores(grades: list[LabGrade], path: Path) -> None:
    points = sum(g.points for g in grades)
    most = sum(g.max_points for g in grades)
    data = {
        "points": points,
        "max_points": most,
        "score": round(points / most, 4) if most else 0.0,
        "labs": [g.to_json() for g in grades],
    }
    write_atomically(path, json.dumps(data, indent=2) + "\n")


def write_junit(grades: list[LabGrade], path: Path) -> None:
    """One test suite per lab, one test case per check; a lab that could not run is one
    errored case, so that a CI summary shows it rather than an empty suite."""
    suites = ET.Element("testsuites", name="chaoslab")
    for grade in grades:
        failures = sum(1 for c in grade.checks if not c.passed)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=grade.slug,
            tests=str(len(grade.checks) or 1),
            failures=str(failures),
            errors="1" if grade.error else "0",
            skipped="0",
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="points", value=str(grade.points))
        ET.SubElement(props, "property", name="max_points", value=str(grade.max_points))
        ET.SubElement(props, "property", name="seeds", value=" ".join(map(str, grade.seeds)))
        if grade.error:
            case = ET.SubElement(suite, "testcase", classname=grade.slug, name="run")
            ET.SubElement(case, "error", message=grade.error.splitlines()[0]).text = grade.error
        for check in grade.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=grade.slug,
                name=check.name,
                time=f"{check.tally.seconds:.3f}",
            )
            if not check.passed:
                first = (check.tally.message or "failed").splitlines()[0]
                ET.SubElement(
                    case,
                    "failure",
                    message=f"passed {check.tally.passes} of {check.of_runs} runs: {first}",
                ).text = check.tally.message
        if grade.changes:
            ET.SubElement(suite, "system-out").text = "Changed outside the learner's files:\n" + (
                "\n".join(str(c) for c in grade.changes)
            )
    ET.indent(suites)
    write_atomically(path, ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def exercism_results(grade: LabGrade) -> dict[str, object]:
    """Exercism's test-runner interface, version 3: a test per check, its task the check's
    number."""
    if grade.status == "error":
        return {"version": 3, "status": "error", "message": grade.error or "no check ran"}
    tests = []
    for check in grade.checks:
        entry: dict[str, object] = {
            "name": check.name,
            "status": "pass" if check.passed else "fail",
        }
        if not check.passed:
            entry["message"] = check.tally.message
        if check.task_id is not None:
            entry["task_id"] = check.task_id
        tests.append(entry)
    return {"version": 3, "status": grade.status, "tests": tests}


def write_exercism(grade: LabGrade, path: Path) -> None:
    write_atomically(path, json.dumps(exercism_results(grade), indent=2) + "\n")
