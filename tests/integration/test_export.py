"""`chaoslab export --student`: the repository a class gets, checked as GitHub would run it.

Its workflow is validated with the real actionlint (built from its Go module into the cache,
or the tests skip saying why), and each grading step's command runs in the exported
repository, with the exported harness."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tools import cache_root
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration

ACTIONLINT_VERSION = "v1.7.12"
_COMMAND = re.compile(r"^\s+command: (\".*\")$", re.MULTILINE)


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """actionlint, built once per machine from its Go module."""
    binary = cache_root() / "actionlint" / ACTIONLINT_VERSION / "actionlint"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed: actionlint cannot be built, the workflow is not linted")
    built = subprocess.run(
        [go, "install", f"github.com/rhysd/actionlint/cmd/actionlint@{ACTIONLINT_VERSION}"],
        env={**os.environ, "GOBIN": str(binary.parent)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, f"building actionlint failed:\n{built.stderr}"
    return binary


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    instructor = tmp_path / "instructor"
    shutil.copytree(FIXTURE_LABS / "ping", instructor / "ping")
    manifest = instructor / "ping" / "lab.toml"
    manifest.write_text(
        manifest.read_text().replace(
            "starter_fails = []", "starter_fails = []\npoints = { test_1_ping_answers = 3 }"
        )
    )
    (instructor / "ping" / "wrong").mkdir()
    (instructor / "ping" / "wrong" / "slow.py").write_text('"""Wrong: slow."""\n')
    student = tmp_path / "student"
    result = subprocess.run(
        chaoslab_command("export", "--student", str(student)),
        env=child_env(CHAOSLAB_LABS=str(instructor)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 lab(s)" in result.stdout
    return student


def test_the_student_repository_has_no_answers(exported: Path) -> None:
    lab = exported / "labs" / "ping"
    assert (lab / "services" / "front.py").is_file()
    assert (lab / "tests" / "test_ping.py").is_file()
    assert (lab / "lab.toml").is_file()
    for answer in ("solution", "wrong", "also-correct"):
        assert not (lab / answer).exists()
    assert not list(exported.rglob("__pycache__"))
    assert (exported / "harness" / "cli.py").is_file()
    readme = (exported / "README.md").read_text()
    assert "| 0 | `ping` | Ping through a proxy | 5 |" in readme
    assert "make lab LAB=<lab>" in readme


def test_the_classroom_workflow_passes_actionlint(exported: Path, actionlint: Path) -> None:
    workflow = exported / ".github" / "workflows" / "classroom.yml"
    text = workflow.read_text()
    assert "classroom-resources/autograding-command-grader@v1" in text
    assert "max-score: 5" in text
    assert 'PING_RESULTS: "${{steps.ping.outputs.result}}"' in text
    assert "runners: ping" in text
    lint = subprocess.run(
        [str(actionlint), "-no-color", str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_each_grading_step_runs_in_the_exported_repository(exported: Path) -> None:
    commands = [
        json.loads(c)
        for c in _COMMAND.findall(
            (exported / ".github" / "workflows" / "classroom.yml").read_text()
        )
    ]
    assert commands == ["python -m harness.cli check ping"]
    # The job's `python` is one with the project's packages, as its setup step installs them.
    env = child_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("CHAOSLAB_LABS", None)
    which = subprocess.run(
        ["python", "-c", "import harness; print(harness.__file__)"],
        cwd=exported,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(which.stdout.strip()).is_relative_to(exported)
    for command in commands:
        step = subprocess.run(
            ["bash", "-c", command],
            cwd=exported,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert step.returncode == 0, step.stdout + step.stderr
        assert "ping" in step.stdout


def test_export_never_writes_into_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = subprocess.run(
        chaoslab_command("export", "--student", str(tmp_path)),
        env=child_env(CHAOSLAB_LABS=str(FIXTURE_LABS)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not empty" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
