"""The pictures a check leaves (porcupine's visualization) are embedded in the report."""

from __future__ import annotations

import html
from pathlib import Path

from harness import load_lab
from harness.html_report import MAX_EMBEDDED, REPORT, build
from tests.conftest import FIXTURE_LABS

RECORD = {"ops": [], "faults": [], "panels": [], "traces": [], "began_wall": 0}


def page_with(folder: Path) -> str:
    return build(load_lab(FIXTURE_LABS / "ping"), {"checks": [], "seed": 1}, RECORD, folder)


def test_a_picture_is_embedded_whole_and_linked(tmp_path: Path) -> None:
    picture = '<html><body><div id="history">a "quoted" &amp; drawn history</div></body></html>'
    (tmp_path / "linearizability-kv.html").write_text(picture)
    (tmp_path / REPORT).write_text("the previous report: never embedded in itself")

    page = page_with(tmp_path)

    assert f'srcdoc="{html.escape(picture, quote=True)}"' in page
    assert '<a href="linearizability-kv.html">' in page
    assert "the previous report" not in page


def test_a_picture_too_large_to_embed_is_only_linked(tmp_path: Path) -> None:
    (tmp_path / "huge.html").write_text("x" * (MAX_EMBEDDED + 1))

    page = page_with(tmp_path)

    assert "<iframe" not in page
    assert '<a href="huge.html">' in page
    assert page_with(tmp_path / "empty").count("Pictures the checks left") == 0
