"""harness.logs_view: every process's stamped lines and the faults, merged in time order."""

from __future__ import annotations

import time
from pathlib import Path

from harness.logs_view import merged


def test_lines_and_faults_are_merged_in_time_order(tmp_path: Path) -> None:
    began = time.mktime((2026, 11, 29, 23, 59, 58, 0, 0, -1))  # local time, near midnight
    (tmp_path / "api.log").write_text(
        "23:59:58.100 started\n00:00:00.500 Traceback (most recent call last):\nno stamp\n"
    )
    (tmp_path / "toxiproxy.log").write_text(
        '23:59:58.050 {"level":"info","message":"Started proxy","name":"checks__api"}\n'
    )
    record = {
        "began_wall": began,
        "faults": [{"description": "crash api", "start": 1.0, "end": 3.0}],
    }

    lines = merged(tmp_path, record)

    assert [line[14:] for line in lines] == [
        "toxiproxy  info: Started proxy (name checks__api)",
        "api        started",
        "FAULT ON   crash api",
        "api        Traceback (most recent call last):",
        "api        no stamp",
        "FAULT OFF  crash api",
    ]
    assert lines[2].startswith("23:59:59.000")
