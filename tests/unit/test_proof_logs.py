"""harness.proof: a run's logs are kept apart from other runs' (CHAOSLAB_LOGS), and an
unexpected run's output ends with the tail of each service's log, since CI keeps nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.environment import LOGS_ENV, logs_dir
from harness.proof import LOG_TAIL_LINES, _log_tails


def test_logs_env_moves_the_kept_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    assert logs_dir("quorum") == tmp_path / "quorum"
    monkeypatch.delenv(LOGS_ENV)
    assert logs_dir("quorum") != tmp_path / "quorum"


def test_log_tails_name_each_service_and_keep_its_last_lines(tmp_path: Path) -> None:
    (tmp_path / "consumer-2.log").write_text("".join(f"line {n}\n" for n in range(100)))
    (tmp_path / "queue.log").write_text("ready\n")
    (tmp_path / "verdict.json").write_text("{}")
    text = _log_tails(tmp_path)
    assert f"--- consumer-2.log, last {LOG_TAIL_LINES} lines ---" in text
    assert "line 99" in text
    assert f"line {99 - LOG_TAIL_LINES}\n" not in text
    assert "--- queue.log, last 1 lines ---\nready" in text
    assert "{}" not in text


def test_no_logs_add_nothing(tmp_path: Path) -> None:
    assert _log_tails(tmp_path / "absent") == ""
