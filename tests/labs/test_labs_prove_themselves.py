"""Every lab proves itself (rustlings' and Exercism's way): its manifest is sound, its starter
fails exactly the checks the lab is about, and its reference solution passes them all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness import Lab, catalogue
from tests.conftest import chaoslab_command, child_env

LABS = catalogue()
pytestmark = pytest.mark.integration


def check(lab: Lab, tmp_path: Path, *extra: str) -> dict[str, object]:
    out = tmp_path / "verdict.json"
    result = subprocess.run(
        chaoslab_command("check", lab.slug, "--json", str(out), *extra),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.exists(), f"no verdict (exit {result.returncode}):\n{result.stdout}{result.stderr}"
    verdict: dict[str, object] = json.loads(out.read_text())
    assert not verdict["setup_error"], verdict["setup_error"]
    verdict["output"] = result.stdout
    return verdict


def failed(verdict: dict[str, object]) -> set[str]:
    checks = verdict["checks"]
    assert isinstance(checks, list)
    return {c["name"] for c in checks if c["outcome"] != "passed"}


def check_names(lab: Lab) -> set[str]:
    names = set()
    for path in lab.checks_dir.glob("test_*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("def test_"):
                names.add(line.removeprefix("def ").split("(", 1)[0])
    return names


def test_the_catalogue_has_labs() -> None:
    assert {lab.slug for lab in LABS} >= {"idempotency-keys", "circuit-breaker"}


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_manifest_is_sound(lab: Lab) -> None:
    assert (lab.root / "README.md").is_file(), "a lab needs a README with its story"
    assert all(hint.strip() for hint in lab.hints)
    assert lab.starter_fails, "[checks] starter_fails must name the checks the lab is about"
    unknown = set(lab.starter_fails) - check_names(lab)
    assert not unknown, f"starter_fails names checks that do not exist: {unknown}"
    owned = {Path(f).relative_to("services").as_posix() for f in lab.learner_files}
    solved = {
        p.relative_to(lab.solution_dir).as_posix()
        for p in lab.solution_dir.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert solved == owned, "solution/ must hold exactly the learner's files"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_starter_fails_exactly_the_checks_the_lab_is_about(lab: Lab, tmp_path: Path) -> None:
    verdict = check(lab, tmp_path)
    assert failed(verdict) == set(lab.starter_fails), verdict["output"]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_solution_passes_every_check(lab: Lab, tmp_path: Path) -> None:
    verdict = check(lab, tmp_path, "--solution")
    assert verdict["ok"], verdict["output"]
    assert failed(verdict) == set()
