"""Re-grading a class: `chaoslab export --grader` writes a workflow that actionlint accepts,
whose steps run here as GitHub would run them (a `git` that clones from local folders stands
in for github.com), and `chaoslab gather` turns their results into one CSV."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env
from tests.integration.test_export import actionlint  # noqa: F401  (a fixture)
from tests.integration.test_grading import break_ping

pytestmark = pytest.mark.integration

FAKE_GIT = """#!/bin/sh
# git clone --quiet --depth 1 https://x-access-token:TOKEN@github.com/OWNER/NAME.git DEST
for last; do :; done
url=$(echo "$@" | tr ' ' '\\n' | grep '^https://')
repo=${url#*github.com/}
mkdir -p "$(dirname "$last")"
cp -r "$LOCAL_REPOS/${repo%.git}" "$last"
"""


def run_blocks(workflow: str) -> list[str]:
    """The scripts of the workflow's `run: |` steps, in order."""
    blocks, lines = [], workflow.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "run: |":
            indent = len(line) - len(line.lstrip()) + 2
            body = []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) < indent:
                    break
                body.append(following[indent:])
            blocks.append("\n".join(body).strip() + "\n")
    return blocks


@pytest.fixture
def grader(tmp_path: Path) -> Path:
    checkout = tmp_path / "grader"
    checkout.mkdir()
    result = subprocess.run(
        chaoslab_command("export", "--grader", str(checkout)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return checkout


def test_the_grader_workflow_passes_actionlint(grader: Path, actionlint: Path) -> None:  # noqa: F811
    workflow = grader / ".github" / "workflows" / "grade-class.yml"
    lint = subprocess.run(
        [str(actionlint), "-no-color", str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    again = subprocess.run(
        chaoslab_command("export", "--grader", str(grader)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 2
    assert "exists" in again.stderr


def test_the_workflow_grades_a_class_into_one_csv(grader: Path, tmp_path: Path) -> None:
    groups_script, grade_script = run_blocks(
        (grader / ".github" / "workflows" / "grade-class.yml").read_text()
    )
    # The list job: three repositories make three groups (one job each).
    (grader / "submissions.txt").write_text("# the class\nclass/alice\nclass/bob\n\nclass/carol\n")
    output = tmp_path / "github-output"
    subprocess.run(
        ["bash", "-c", groups_script],
        cwd=grader,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
        check=True,
    )
    groups = json.loads(output.read_text().removeprefix("groups="))
    assert groups == ["class/alice", "class/bob", "class/carol"]

    # Their repositories: alice's ping works, bob broke it, carol has no lab.
    repos = tmp_path / "github"
    for name in ("alice", "bob"):
        shutil.copytree(
            FIXTURE_LABS / "ping",
            repos / "class" / name / "labs" / "ping",
            ignore=shutil.ignore_patterns("solution", "__pycache__"),
        )
    break_ping(repos / "class" / "bob" / "labs" / "ping")
    (repos / "class" / "carol").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(FAKE_GIT)
    (bin_dir / "git").chmod(0o755)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)

    # The grade job, run from a checkout of the grader (the fixture lab is its catalogue).
    env = child_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        LOCAL_REPOS=str(repos),
        TOKEN="secret",
        CHAOSLAB_LABS=str(FIXTURE_LABS),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    for group in [" ".join(groups[:2]), groups[2]]:
        done = subprocess.run(
            ["bash", "-c", grade_script],
            cwd=grader,
            env={**env, "REPOS": group},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    # The gather job.
    table = tmp_path / "class-grades.csv"
    gathered = subprocess.run(
        chaoslab_command("gather", str(grader / "results"), "--csv", str(table)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert gathered.returncode == 0, gathered.stderr
    # One row per repository and lab (the fixture catalogue has other labs, which no
    # submission holds): the ping rows say what each one earned.
    table_rows = list(csv.DictReader(table.open()))
    assert {row["submission"] for row in table_rows} == {"class/alice", "class/bob", "class/carol"}
    rows = {row["submission"]: row for row in table_rows if row["lab"] == "ping"}
    assert (rows["class/alice"]["status"], rows["class/alice"]["points"]) == ("pass", "3")
    assert (rows["class/bob"]["status"], rows["class/bob"]["points"]) == ("fail", "2")
    assert rows["class/carol"]["status"] == "error"
    assert all(row["lab"] == "ping" for row in rows.values())


def test_gather_refuses_a_folder_that_is_not_there(tmp_path: Path) -> None:
    result = subprocess.run(
        chaoslab_command("gather", str(tmp_path / "nope"), "--csv", str(tmp_path / "x.csv")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no such folder" in result.stderr
