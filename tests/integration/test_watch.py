"""`chaoslab watch`: a learner saves, the checks run again (real lab runs of the fixture lab);
a save during a run cancels it, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env
from tests.integration.test_grading import break_ping

pytestmark = pytest.mark.integration


class Watcher:
    """`chaoslab watch` in a child, its output read line by line."""

    def __init__(self, lab: Path) -> None:
        self.mark = uuid.uuid4().hex  # in the environment of everything the watch starts
        self.process = subprocess.Popen(
            chaoslab_command("watch", str(lab)),
            env=child_env(CHAOSLAB_TEST_WATCH=self.mark),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + "\n".join(self.seen))


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    copy = tmp_path / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_save_runs_the_checks_again_and_ctrl_c_stops_everything(lab: Path) -> None:
    watcher = Watcher(lab)
    try:
        watcher.wait_for("All 3 checks pass")
        break_ping(lab)
        watcher.wait_for("front.py saved: checking again.")
        line = watcher.wait_for("first verdict")
        took = float(line.split("(first verdict ")[1].split(" s")[0])
        assert took > 0
        watcher.wait_for("FAIL 1. ping answers")

        # A save in the middle of a run cancels it: the next run starts from the new code.
        (lab / "tests" / "test_ping.py").write_text(
            (lab / "tests" / "test_ping.py").read_text()
        )  # not a learner file: no run
        hang = lab / "services" / "front.py"
        hang.write_text(hang.read_text() + "\n# a comment\n")
        watcher.wait_for("front.py saved: checking again.")
        assert processes_marked(watcher.mark)  # the run in progress (the mark reaches it)
        hang.write_text(hang.read_text() + "\n# another\n")
        watcher.wait_for("cancelling the run in progress")
        watcher.wait_for("FAIL 1. ping answers")
        assert not [s for s in watcher.seen if "test_ping.py saved" in s]
    finally:
        watcher.process.send_signal(signal.SIGINT)
        code = watcher.process.wait(timeout=60)
    assert code == 130
    assert processes_marked(watcher.mark) == []


def processes_marked(mark: str) -> list[int]:
    """The processes whose environment carries `mark`."""
    needle = f"CHAOSLAB_TEST_WATCH={mark}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found
