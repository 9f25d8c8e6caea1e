"""What a check reads of a service's output: every line as the service wrote it, without the
time stamp the harness puts in front of each line of its log, on both backends."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.backends.docker import ContainerService
from harness.processes import ChildProcess, stamp, unstamp


def test_unstamp_takes_off_the_stamp_and_nothing_else() -> None:
    assert unstamp(stamp(1_700_000_000.25) + b'{"level": "info"}') == b'{"level": "info"}'
    assert unstamp(b"12:00 not a stamp") == b"12:00 not a stamp"
    assert unstamp(stamp(0.0)) == b""


def test_a_process_lines_come_back_as_it_wrote_them(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        'print(\'{"msg": "one"}\')\n'
        "print('two', file=sys.stderr)\n"
        "sys.stdout.write('01:02:03.456 looks stamped')\n"  # no newline: the last line
    )
    child = ChildProcess(
        "talker", [sys.executable, "-c", script], run_id="test", log=tmp_path / "talker.log"
    )
    child.start()
    assert child.wait(timeout=30) == 0
    lines = child.log_lines()
    assert sorted(lines) == sorted(['{"msg": "one"}', "two", "01:02:03.456 looks stamped"])
    # The log file itself keeps the stamps, for `chaoslab logs`.
    assert all(line[13:] in lines for line in (tmp_path / "talker.log").read_text().splitlines())


def test_a_line_still_being_copied_is_not_read(tmp_path: Path) -> None:
    log = tmp_path / "half.log"
    log.write_bytes(stamp(1.0) + b"whole\n" + stamp(2.0) + b"hal")
    child = ChildProcess("half", ["true"], run_id="test", log=log)
    assert child.log_lines() == ["whole"]


def test_a_container_lines_come_from_its_logs_without_timestamps() -> None:
    asked: dict[str, Any] = {}

    class Container:
        def logs(self, **options: Any) -> bytes:
            asked.update(options)
            return b'{"msg": "one"}\ntwo\n'

    spec: Any = SimpleNamespace(name="orders")
    service = ContainerService(backend=None, spec=spec, port=1, container=Container())  # type: ignore[arg-type]
    assert service.log_lines() == ['{"msg": "one"}', "two"]
    assert not asked.get("timestamps")
    assert asked.get("stdout", True)
    assert asked.get("stderr", True)
