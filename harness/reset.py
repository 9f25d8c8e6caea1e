"""`chaoslab reset LAB`: the learner's files back to the starter, their version kept first.

The starter is what git holds: the file as the last commit by someone else left it (the course's
authors; GitHub Classroom's first commit), so that a learner who committed their work still
gets the starter back, not their own last commit.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from harness._errors import UsageError
from harness.lab import Lab
from harness.tools import cache_root


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
    )


def starter_text(lab: Lab, rel: str) -> str:
    """The starter version of a learner file, from git; a UsageError says why it is not there."""
    if shutil.which("git") is None or _git(lab.root, "rev-parse", "--git-dir").returncode:
        raise UsageError(
            f"cannot find the starter of {rel}: {lab.root} is not in a git checkout.\n  Fix: "
            "download the lab again, or copy its file from the course's repository."
        )
    me = _git(lab.root, "config", "user.email").stdout.strip()
    log = _git(lab.root, "log", "--format=%H %ae", "--", rel)
    for line in log.stdout.splitlines():
        commit, _, author = line.partition(" ")
        if author != me:
            shown = _git(lab.root, "show", f"{commit}:./{rel}")
            if shown.returncode == 0:
                return shown.stdout
    raise UsageError(
        f"cannot find the starter of {rel}: git has no commit of it by anyone but you.\n  Fix: "
        "copy the file from the course's repository."
    )


def reset(lab: Lab) -> tuple[Path, list[str]]:
    """Back up the learner's files, then write the starter's; returns the backup folder and the
    files that changed."""
    starters = {rel: starter_text(lab, rel) for rel in lab.learner_files}  # all found, or none
    backup = cache_root() / "backups" / lab.slug / time.strftime("%Y%m%d-%H%M%S")
    changed = []
    for rel, text in starters.items():
        path = lab.root / rel
        if path.is_file():
            if path.read_text(encoding="utf-8", errors="replace") == text:
                continue
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, backup / rel)
        path.write_text(text, encoding="utf-8")
        changed.append(rel)
    return backup, changed
