"""Grading a class as an instructor does: `chaoslab grade` on a student's repository runs the
instructor's checks on the student's learner files (real lab runs of the fixture lab), scores
them with lab.toml's points, and writes JUnit XML, JSON scores and Exercism's results.json."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration

BROKEN_PING = """
async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"error": "broken"}, status_code=500)
"""


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chaoslab_command(*args),
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def instructor(tmp_path: Path) -> Path:
    """The instructor's catalogue: the fixture lab, its first check worth 3 points."""
    labs = tmp_path / "instructor" / "labs"
    shutil.copytree(FIXTURE_LABS / "ping", labs / "ping")
    manifest = labs / "ping" / "lab.toml"
    manifest.write_text(
        manifest.read_text().replace(
            "starter_fails = []", "starter_fails = []\npoints = { test_1_ping_answers = 3 }"
        )
    )
    return labs


def student_repo(instructor: Path, root: Path) -> Path:
    """A student's repository as exported: the lab without its solution."""
    shutil.copytree(
        instructor / "ping", root / "labs" / "ping", ignore=shutil.ignore_patterns("solution")
    )
    return root


def break_ping(lab: Path) -> None:
    front = lab / "services" / "front.py"
    text = front.read_text()
    start = text.index("async def ping")
    end = text.index("async def save")
    front.write_text(text[:start] + BROKEN_PING.lstrip() + "\n\n" + text[end:])


def test_tampered_checks_and_points_gain_nothing(instructor: Path, tmp_path: Path) -> None:
    repo = student_repo(instructor, tmp_path / "student")
    lab = repo / "labs" / "ping"
    break_ping(lab)
    # The student makes check 1 pass whatever happens, and moves its points elsewhere.
    checks = lab / "tests" / "test_ping.py"
    checks.write_text(checks.read_text().replace("answer.status_code == 200", "True"))
    manifest = lab / "lab.toml"
    manifest.write_text(
        manifest.read_text().replace("test_1_ping_answers = 3", "test_2_fails_when_asked = 30")
    )
    out = tmp_path / "out"

    result = run(
        "grade", "--out", str(out), "--submission", str(repo), CHAOSLAB_LABS=str(instructor)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests/test_ping.py changed (ignored: graded with the original)" in result.stdout
    assert "lab.toml changed (ignored" in result.stdout
    scores = json.loads((out / "scores.json").read_text())
    assert (scores["points"], scores["max_points"]) == (2, 5)
    (ping,) = scores["labs"]
    by_name = {c["name"]: c for c in ping["checks"]}
    assert by_name["test_1_ping_answers"]["earned"] == 0
    assert "ping failed" in by_name["test_1_ping_answers"]["message"]
    assert {c["path"] for c in ping["changed_outside_your_files"]} == {
        "tests/test_ping.py",
        "lab.toml",
    }
    results = json.loads((out / "ping" / "results.json").read_text())
    assert results["version"] == 3
    assert results["status"] == "fail"
    first = results["tests"][0]
    assert (first["name"], first["status"], first["task_id"]) == ("test_1_ping_answers", "fail", 1)
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["test_1_ping_answers"]


def test_a_passing_submission_with_its_own_module_gets_every_point(
    instructor: Path, tmp_path: Path
) -> None:
    repo = student_repo(instructor, tmp_path / "student")
    lab = repo / "labs" / "ping"
    (lab / "services" / "timeouts.py").write_text("PING_TIMEOUT = 1.0\n")
    front = lab / "services" / "front.py"
    front.write_text(
        front.read_text()
        .replace("import httpx\n", "import httpx\n\nfrom services.timeouts import PING_TIMEOUT\n")
        .replace("timeout=1.0", "timeout=PING_TIMEOUT")
    )
    # A harness of the student's own in the folder the grader is run from is never imported.
    (repo / "harness").mkdir()
    (repo / "harness" / "__init__.py").write_text("raise SystemExit('the student harness ran')\n")
    out = tmp_path / "out"
    console = Path(sys.executable).parent / "chaoslab"

    result = subprocess.run(
        [str(console), "grade", "ping", "--out", str(out), "--repeat", "2"],
        env=child_env(CHAOSLAB_LABS=str(instructor)),
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    scores = json.loads((out / "scores.json").read_text())
    assert (scores["points"], scores["max_points"]) == (5, 5), result.stdout
    (ping,) = scores["labs"]
    assert len(ping["seeds"]) == 2
    assert all(c["passes"] == 2 for c in ping["checks"])
    assert ping["changed_outside_your_files"] == [
        {"path": "services/timeouts.py", "what": "added", "used": True}
    ]
    assert json.loads((out / "ping" / "results.json").read_text())["status"] == "pass"


def test_a_lab_missing_from_the_submission_is_an_error_not_a_crash(
    instructor: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(
        "grade", "--out", str(out), "--submission", str(tmp_path), CHAOSLAB_LABS=str(instructor)
    )
    assert result.returncode == 0, result.stderr
    assert "could not be graded" in result.stdout
    results = json.loads((out / "ping" / "results.json").read_text())
    assert results["status"] == "error"
    assert "labs/ping" in results["message"]
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    assert json.loads((out / "scores.json").read_text())["points"] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--out", "{file}"], "that is a file"),
        (["--out", "{tmp}/o", "--submission", "{tmp}/nowhere"], "no such folder"),
        (["--out", "{tmp}/o", "--repeat", "0"], "not above zero"),
        (["nope", "--out", "{tmp}/o"], "unknown lab"),
    ],
)
def test_bad_grading_input_exits_2_and_says_why(tmp_path: Path, args: list[str], said: str) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    filled = [a.format(file=file, tmp=tmp_path) for a in args]
    result = run("grade", *filled, CHAOSLAB_LABS=str(FIXTURE_LABS))
    assert result.returncode == 2
    assert said in result.stderr
    assert "Traceback" not in result.stderr


def test_check_repeat_shows_each_checks_pass_rate(tmp_path: Path) -> None:
    passing = run("check", str(FIXTURE_LABS / "ping"), "--repeat", "2")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert re.search(r"test_1_ping_answers +passed 2/2\n", passing.stdout)

    failing = run("check", str(FIXTURE_LABS / "ping"), "--repeat", "2", PING_LAB_FAIL="1")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert re.search(r"test_2_fails_when_asked +passed 0/2\n", failing.stdout)
