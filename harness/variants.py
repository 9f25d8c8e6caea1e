"""The versions of a lab's learner code that a lab proves itself with (mutation testing for
teaching material): the starter, the reference solution, plausible wrong fixes that its checks
must reject, and correct fixes written differently that its checks must accept.

    labs/<slug>/wrong/<name>.py          a whole learner file, wrong in one way
    labs/<slug>/also-correct/<name>.py   a whole learner file, right in another way

A file variant replaces the lab's one learner file; a folder variant (`wrong/<name>/`), for labs
whose learner owns several files, holds the files it changes and is laid over the solution.
Its docstring ends with what the proof asserts:

    Wrong: <the one flaw>
    Rejected by: test_2_answers_agree, test_5_retry_after_crash

`Rejected by` is exactly the set of checks that fail, every run; an also-correct fix says
`Also correct: <how it differs>` and must pass every check.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness._errors import LabDefinitionError
from harness.lab import Lab

Kind = Literal["starter", "solution", "wrong", "also-correct"]
WRONG_DIR = "wrong"
ALSO_CORRECT_DIR = "also-correct"
_REJECTED_BY = "Rejected by:"
_WRONG = "Wrong:"
_ALSO_CORRECT = "Also correct:"


@dataclass(frozen=True)
class Variant:
    """One version of the learner's code, and the checks it must fail."""

    kind: Kind
    name: str
    path: Path | None  # None for the starter (the lab's own services/)
    expected_failures: frozenset[str]
    about: str = ""  # the flaw, or how a correct fix differs

    @property
    def label(self) -> str:
        """`wrong/ack_first`, `solution`, `starter`: how tables and test ids name it."""
        return self.kind if self.kind in ("starter", "solution") else f"{self.kind}/{self.name}"


def variants(lab: Lab) -> list[Variant]:
    """Every variant of `lab`: starter, solution, then wrong and also-correct fixes by name."""
    found = [
        Variant("starter", "starter", None, frozenset(lab.starter_fails)),
        Variant("solution", "solution", lab.solution_dir, frozenset()),
    ]
    for folder, kind in ((WRONG_DIR, "wrong"), (ALSO_CORRECT_DIR, "also-correct")):
        base = lab.root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            if path.name.startswith((".", "_")) or path.name == "__pycache__":
                continue
            if path.is_file() and path.suffix != ".py":
                continue
            found.append(load_variant(lab, path, kind))  # type: ignore[arg-type]
    return found


def load_variant(lab: Lab, path: Path, kind: Kind | None = None) -> Variant:
    """Read one wrong or also-correct fix; errors name the file and the fix."""
    if kind is None:
        kind = "also-correct" if path.parent.name == ALSO_CORRECT_DIR else "wrong"
    if path.is_file() and len(lab.learner_files) != 1:
        raise LabDefinitionError(
            path,
            "variant",
            f"a one-file variant needs a lab with one learner file; '{lab.slug}' has "
            f"{len(lab.learner_files)}",
            f"make it a folder {path.with_suffix('')}/ laid out like services/",
        )
    fields = _docstring_fields(path)
    if kind == "wrong":
        about = fields.get(_WRONG, "")
        rejected = fields.get(_REJECTED_BY)
        if not about or rejected is None:
            raise LabDefinitionError(
                path,
                "docstring",
                "a wrong fix must say what is wrong and which checks reject it",
                f"end its docstring with '{_WRONG} <the flaw>' and "
                f"'{_REJECTED_BY} test_1_..., test_2_...'",
            )
        expected = frozenset(name.strip() for name in rejected.split(",") if name.strip())
        if not expected:
            raise LabDefinitionError(
                path, "docstring", f"'{_REJECTED_BY}' names no check", "name at least one check"
            )
    else:
        about = fields.get(_ALSO_CORRECT, "")
        if not about:
            raise LabDefinitionError(
                path,
                "docstring",
                "an also-correct fix must say how it differs from the reference",
                f"end its docstring with '{_ALSO_CORRECT} <how it differs>'",
            )
        expected = frozenset()
    return Variant(kind, path.stem if path.is_file() else path.name, path, expected, about)


def overlay(lab: Lab, variant_path: Path, services: Path) -> None:
    """Lay a variant over a copy of the lab's `services/` folder.

    A folder variant is laid over the reference solution: it holds only the learner files it
    changes, so that each one shows its one flaw rather than copies of the solution's other
    files. (A variant that keeps a starter file says so by holding a copy of it.)"""
    if variant_path.is_dir():
        if lab.solution_dir.is_dir():
            shutil.copytree(
                lab.solution_dir,
                services,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        shutil.copytree(
            variant_path,
            services,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        return
    (learner_file,) = lab.learner_files
    shutil.copyfile(variant_path, services / Path(learner_file).relative_to("services"))


def resolve_variant(lab: Lab, given: str) -> Path:
    """A `--variant` argument as a path: relative to the lab folder, or as given, or a
    variant's label (`wrong/no_drain` for wrong/no_drain.py, as tables name it)."""
    for candidate in (lab.root / given, Path(given)):
        if candidate.exists():
            return candidate.resolve()
    found = [v for v in variants(lab) if v.kind in ("wrong", "also-correct")]
    for variant in found:
        if variant.label == given.rstrip("/") and variant.path is not None:
            return variant.path.resolve()
    known = [v.label for v in found]
    raise LabDefinitionError(
        lab.root / given,
        "--variant",
        f"no such file or folder '{given}'",
        "give a path relative to the lab folder"
        + (f" (the lab has: {', '.join(known)})" if known else ""),
    )


def _docstring_fields(path: Path) -> dict[str, str]:
    """`Key: value` lines of the module docstring (of the first .py with one, for a folder)."""
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        except (SyntaxError, UnicodeDecodeError, OSError) as exc:
            raise LabDefinitionError(file, "python", f"cannot be read: {exc}", "fix it") from exc
        fields: dict[str, str] = {}
        current = ""
        for line in (ast.get_docstring(tree) or "").splitlines():
            key = next((k for k in (_WRONG, _REJECTED_BY, _ALSO_CORRECT) if line.startswith(k)), "")
            if key:
                current = key
                fields[key] = line.removeprefix(key).strip()
            elif current and line.strip():  # a long value goes on over the next lines
                fields[current] += " " + line.strip()
            else:
                current = ""
        if fields:
            return fields
    return {}
