"""A student's submission, graded with the instructor's files.

The grader runs the instructor's harness against the instructor's copy of each lab: only the
student's learner files (and new modules beside them) are taken from the submission. Anything
else the student changed (checks, lab.toml, a harness-owned service) is reported and ignored,
so editing it gains nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.lab import MANIFEST, Lab
from harness.variants import ALSO_CORRECT_DIR, WRONG_DIR

# Folders of a lab that never reach students (`chaoslab export` leaves them out).
INSTRUCTOR_ONLY = ("solution", WRONG_DIR, ALSO_CORRECT_DIR)
_SKIPPED = ("__pycache__",)


@dataclass(frozen=True)
class Change:
    """A file of the submission that differs from the instructor's copy."""

    path: str  # relative to the lab's folder
    what: Literal["changed", "removed", "added"]
    used: bool = False  # True only for a new module beside the learner's files

    def __str__(self) -> str:
        effect = "used: a new module of yours" if self.used else "ignored: graded with the original"
        return f"{self.path} {self.what} ({effect})"


def submitted_lab(lab: Lab, submission: Path) -> Path | None:
    """The submission's copy of `lab`: `<submission>/labs/<slug>` or `<submission>/<slug>`."""
    for candidate in (submission / "labs" / lab.slug, submission / lab.slug):
        if (candidate / MANIFEST).is_file() or (candidate / "services").is_dir():
            return candidate
    return None


def _files(root: Path) -> dict[str, Path]:
    """Every file under `root` a grade depends on, by its path relative to `root`."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or path.suffix == ".pyc":
            continue
        if any(part in _SKIPPED or part.startswith(".") for part in rel.parts):
            continue
        if rel.parts[0] in INSTRUCTOR_ONLY:
            continue
        found[rel.as_posix()] = path
    return found


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _new_module(lab: Lab, rel: str) -> bool:
    """A new .py file in a folder that holds learner files: the student's own helper."""
    folders = {str(Path(f).parent) for f in lab.learner_files}
    return rel.endswith(".py") and str(Path(rel).parent) in folders


def compare(lab: Lab, submitted: Path) -> list[Change]:
    """What the submission changed outside the learner's files, by path."""
    original, theirs = _files(lab.root), _files(submitted)
    learner = set(lab.learner_files)
    changes = []
    for rel in sorted(set(original) | set(theirs)):
        if rel in learner:
            continue
        if rel not in theirs:
            changes.append(Change(rel, "removed"))
        elif rel not in original:
            changes.append(Change(rel, "added", used=_new_module(lab, rel)))
        elif _digest(original[rel]) != _digest(theirs[rel]):
            changes.append(Change(rel, "changed"))
    return changes


def missing_learner_files(lab: Lab, submitted: Path) -> list[str]:
    return [rel for rel in lab.learner_files if not (submitted / rel).is_file()]


def graded_copy(lab: Lab, submitted: Path, changes: list[Change], into: Path) -> Path:
    """A copy of the instructor's lab with the student's learner files (and new modules) in
    place; returns its folder, named by the lab's slug as a lab's folder must be."""
    target = into / lab.slug
    shutil.copytree(
        lab.root, target, ignore=shutil.ignore_patterns(*INSTRUCTOR_ONLY, *_SKIPPED, "*.pyc")
    )
    used = [c.path for c in changes if c.used]
    for rel in [*lab.learner_files, *used]:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(submitted / rel, target / rel)
    return target
