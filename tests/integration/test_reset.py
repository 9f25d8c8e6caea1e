"""`chaoslab reset`: the starter back from git (the last commit by someone else: a learner who
committed their work still gets the starter), the learner's version kept in a backup."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration


def git(repo: Path, *args: str, email: str) -> None:
    subprocess.run(
        ["git", "-c", f"user.email={email}", "-c", "user.name=someone", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_reset_puts_the_starter_back_and_keeps_the_learners_version(tmp_path: Path) -> None:
    repo = tmp_path / "course"
    lab = repo / "labs" / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", lab, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    git(repo, "add", ".", email="authors@course")
    git(repo, "commit", "-qm", "the course", email="authors@course")
    front = lab / "services" / "front.py"
    starter = front.read_text()
    subprocess.run(["git", "config", "user.email", "learner@class"], cwd=repo, check=True)
    front.write_text(starter + "\n# my first try\n")
    git(repo, "commit", "-qam", "my first try", email="learner@class")
    front.write_text(starter + "\n# my second try\n")
    env = child_env(XDG_CACHE_HOME=str(tmp_path / "cache"))

    done = subprocess.run(
        chaoslab_command("reset", str(lab)), env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert front.read_text() == starter
    kept = done.stdout.split("Your version is kept in ", 1)[1].split(" (copy", 1)[0]
    assert (Path(kept) / "services" / "front.py").read_text().endswith("# my second try\n")
    again = subprocess.run(
        chaoslab_command("reset", str(lab)), env=env, capture_output=True, text=True, check=False
    )
    assert "already the starter's" in again.stdout


def test_reset_outside_git_says_where_to_get_the_starter(tmp_path: Path) -> None:
    lab = tmp_path / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", lab, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        chaoslab_command("reset", str(lab)),
        env=child_env(XDG_CACHE_HOME=str(tmp_path / "cache")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "not in a git checkout" in done.stderr
    assert "Fix:" in done.stderr
