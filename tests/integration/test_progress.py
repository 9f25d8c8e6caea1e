"""A learner's progress, as `chaoslab list` and `chaoslab next` show it: per lab folder (two
checkouts never share it), the last and best verdicts and the hints used; runs of the
reference solution are not the learner's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.tools import find_toxiproxy
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration


def catalogue(root: Path, *names: str) -> Path:
    for name in names:
        shutil.copytree(
            FIXTURE_LABS / "ping", root / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def row(listing: str, slug: str) -> str:
    (line,) = [x for x in listing.splitlines() if re.search(rf"\s{slug}\s", x)]
    return line


def test_progress_is_per_lab_folder_and_names_the_next_lab(tmp_path: Path) -> None:
    first = catalogue(tmp_path / "course", "alpha", "beta")
    other = catalogue(tmp_path / "copy", "alpha")
    base = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "CHAOSLAB_TOXIPROXY": str(find_toxiproxy())}

    def chaoslab(*args: str, labs: Path = first, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            chaoslab_command(*args),
            env=child_env(CHAOSLAB_LABS=str(labs), **base, **env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert chaoslab("next").stdout.startswith("Next: alpha")
    assert chaoslab("check", "alpha").returncode == 0
    assert chaoslab("check", "beta", PING_LAB_FAIL="1").returncode == 1
    assert chaoslab("check", "beta", "--solution").returncode == 0  # not the learner's
    chaoslab("hint", "beta")

    listing = chaoslab("list").stdout
    assert "passing" in row(listing, "alpha")
    assert "best 3/3" in row(listing, "alpha")
    assert "failing (2 of 3 checks pass)" in row(listing, "beta")
    assert "best 2/3, 1 of 2 hints" in row(listing, "beta")
    assert chaoslab("next").stdout.startswith("Next: beta")
    assert "never run" in row(chaoslab("list", labs=other).stdout, "alpha")

    assert chaoslab("check", "beta").returncode == 0
    assert "passing" in row(chaoslab("list").stdout, "beta")
    assert chaoslab("next").stdout.startswith("Every lab passes (2 of 2)")
