"""harness.report: check titles, the JSON score, and what the learner reads."""

from __future__ import annotations

import json

import pytest

from harness.lab import Lab
from harness.report import CheckOutcome, Verdict, render


@pytest.fixture
def lab(tmp_path):
    return Lab(
        slug="idempotency-keys",
        root=tmp_path,
        title="Charge once, even when the client retries",
        chapter=7,
        order=1,
        learner_files=("services/payments.py",),
        hints=("first", "second"),
        services={},
        links=(),
        starter_fails=(),
    )


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("test_2_answers_agree", "2. answers agree"),
        ("tests/test_checks.py::test_2_answers_agree", "2. answers agree"),
        ("test_10_no_charge_twice[seed-3]", "10. no charge twice"),
        ("test_retries_are_spread", "retries are spread"),
    ],
)
def test_check_title_reads_as_a_numbered_task(name, title):
    assert CheckOutcome(name, "passed").title == title


def _verdict(*outcomes, **kwargs):
    checks = [
        CheckOutcome(f"test_{i}_check_{i}", outcome, message=f"story {i}", duration=1.25)
        for i, outcome in enumerate(outcomes, 1)
    ]
    return Verdict("idempotency-keys", kwargs.pop("solution", False), 42, checks, **kwargs)


def test_json_score_is_the_passed_fraction():
    data = _verdict("passed", "failed", "passed", "error").to_json()

    assert (data["passed"], data["total"], data["score"], data["ok"]) == (2, 4, 0.5, False)
    assert data["lab"] == "idempotency-keys"
    assert data["seed"] == 42
    assert data["checks"][1] == {
        "name": "test_2_check_2",
        "outcome": "failed",
        "message": "story 2",
        "duration": 1.25,
    }


def test_ok_when_every_check_passed_or_was_skipped():
    data = _verdict("passed", "skipped").to_json()
    assert data["ok"] is True
    assert data["score"] == 0.5


def test_not_ok_without_checks_or_with_a_setup_error():
    empty = _verdict().to_json()
    assert (empty["ok"], empty["score"], empty["total"]) == (False, 0.0, 0)
    assert _verdict("passed", setup_error="toxiproxy missing").ok is False


def test_failed_names_lists_failures_and_errors():
    assert _verdict("passed", "failed", "error").failed_names() == [
        "test_2_check_2",
        "test_3_check_3",
    ]


def test_write_json_round_trips(tmp_path):
    path = tmp_path / "verdict.json"
    _verdict("passed").write_json(path)
    assert json.loads(path.read_text())["score"] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["verdict.json"]  # no temp file left


def test_write_json_replaces_atomically_and_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "verdict.json"
    path.write_text("old")
    (tmp_path / "sub").mkdir()
    with pytest.raises(IsADirectoryError):
        _verdict("passed").write_json(tmp_path / "sub")  # a folder cannot be replaced by a file
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "verdict.json"]


def test_render_shows_fail_lines_with_the_message(lab):
    verdict = _verdict("passed", "failed")
    verdict.checks[
        1
    ].message = (
        "every charge applied exactly once\n  observed: charge c-17 applied 2 times; expected 1\n"
    )

    lines = render(verdict, lab).splitlines()

    assert lines[0] == (
        "Charge once, even when the client retries  (idempotency-keys, chapter 7; your code)"
    )
    assert "  PASS 1. check 1 (1.2 s)" in lines
    index = lines.index("  FAIL 2. check 2 (1.2 s)")
    assert lines[index + 1 : index + 3] == [
        "       every charge applied exactly once",
        "         observed: charge c-17 applied 2 times; expected 1",
    ]
    assert "1 of 2 checks pass. Seed 42 (replay with --seed 42)." in lines
    assert any("chaoslab hint idempotency-keys" in line for line in lines)


def test_render_all_pass(lab):
    text = render(_verdict("passed", "skipped"), lab)
    assert "  SKIP 2. check 2" in text
    assert text.endswith("All 2 checks pass. Seed 42.")


def test_a_passing_check_shows_its_figure_and_bound(lab):
    verdict = _verdict("passed")
    verdict.checks[0].message = "peak 41 requests/s (expected: at most 60 requests/s)"

    lines = render(verdict, lab).splitlines()

    index = lines.index("  PASS 1. check 1 (1.2 s)")
    assert lines[index + 1] == "       peak 41 requests/s (expected: at most 60 requests/s)"


def test_render_for_the_solution_gives_no_hint(lab):
    text = render(_verdict("failed", solution=True), lab)
    assert "reference solution" in text
    assert "chaoslab hint" not in text


def test_render_setup_error_instead_of_checks(lab):
    text = render(_verdict("failed", setup_error="toxiproxy-server not found"), lab)
    assert "The lab could not run:\ntoxiproxy-server not found" in text
    assert "FAIL" not in text


def test_render_colors_only_when_asked(lab):
    assert "\033[" not in render(_verdict("failed"), lab)
    assert "\033[31mFAIL\033[0m" in render(_verdict("failed"), lab, color=True)
