"""The traces a run keeps for its report: which ones, and their spans in waterfall order."""

from __future__ import annotations

from pathlib import Path

from harness import load_lab
from harness.html_report import build
from harness.tracing.client import Span, Trace
from harness.tracing.waterfall import in_tree_order, pick, record
from tests.conftest import FIXTURE_LABS


def span(
    trace: str, sid: str, parent: str | None, start: int, duration: int, **tags: object
) -> Span:
    return Span(trace, sid, parent, "orders", f"op-{sid}", start, duration, dict(tags))


def trace(tid: str, start: int, duration: int, error: bool = False) -> Trace:
    status = {"otel.status_code": "ERROR"} if error else {}
    return Trace(
        tid,
        [
            span(tid, f"{tid}-root", "caller", start, duration, **{"span.kind": "server"}),
            span(tid, f"{tid}-late", f"{tid}-root", start + 20, 5, **status),
            span(tid, f"{tid}-early", f"{tid}-root", start + 10, 5),
        ],
    )


def test_keeps_the_slowest_the_first_failed_and_the_first() -> None:
    first, slow, failed, other = (
        trace("a", 0, 50),
        trace("b", 100, 900),
        trace("c", 200, 60, True),
        trace("d", 300, 40),
    )

    kept = pick([other, failed, slow, first])

    assert [(why, t.trace_id) for why, t in kept] == [
        ("the slowest request", "b"),
        ("the first request with an error", "c"),
        ("the first request", "a"),
    ]
    assert pick([]) == []
    assert [t.trace_id for _, t in pick([slow])] == ["b"]  # each trace once


def test_rows_go_from_the_root_down_children_by_start() -> None:
    rows = in_tree_order(trace("a", 0, 50))

    assert [(depth, s.span_id) for depth, s in rows] == [
        (0, "a-root"),
        (1, "a-early"),
        (1, "a-late"),
    ]


def test_the_report_draws_the_kept_traces(tmp_path: Path) -> None:
    kept = record("the slowest request", trace("b", 1_000, 312_000, error=True))
    assert kept["spans"][0]["start_ms"] == 0.0
    assert kept["spans"][0]["duration_ms"] == 312.0
    assert kept["spans"][2]["error"] is True

    page = build(
        load_lab(FIXTURE_LABS / "traced"),
        {"checks": [], "seed": 1},
        {"ops": [], "faults": [], "panels": [], "traces": [kept], "began_wall": 0},
        tmp_path,
    )

    assert 'id="traces"' in page
    assert "the slowest request: trace b" in page
    assert "orders server: op-b-root" in page
