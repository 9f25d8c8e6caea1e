"""Shared fixtures of the unit tests: lab folders written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

WriteLab = Callable[..., Path]


@pytest.fixture
def write_lab(tmp_path: Path) -> WriteLab:
    """Write a lab folder (lab.toml and its learner files) and return its root."""

    def write(
        manifest: str,
        slug: str = "idempotency-keys",
        files: Iterable[str] = ("services/payments.py",),
        root: Path | None = None,
    ) -> Path:
        lab_root = (root or tmp_path / "labs") / slug
        lab_root.mkdir(parents=True, exist_ok=True)
        (lab_root / "lab.toml").write_text(manifest, encoding="utf-8")
        for rel in files:
            path = lab_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("# the learner's file\n", encoding="utf-8")
        return lab_root

    return write
