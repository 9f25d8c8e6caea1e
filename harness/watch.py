"""`chaoslab watch LAB`: the checks run again each time a learner file is saved.

Each run is a child `chaoslab check` (so that a new save can cancel it: SIGTERM, and the child
tears its lab down as on Ctrl-C). Its output is shown as it comes, in place on a terminal, and
the time from the save to the first verdict line is printed, because that is the loop's speed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from watchfiles import Change, watch

from harness.lab import PROJECT_ROOT, Lab

DEBOUNCE_MS = 300  # an editor's save is often several writes
CANCEL_GRACE = 30.0  # seconds a cancelled run has to tear its lab down


def learner_paths(lab: Lab) -> set[Path]:
    """The folders that hold the learner's files."""
    return {(lab.root / rel).parent.resolve() for rel in lab.learner_files}


def is_learner_file(lab: Lab, path: str) -> bool:
    """A learner file, or a new module beside one (not __pycache__, not editor temp files)."""
    p = Path(path).resolve()
    if p.suffix != ".py" or p.name.startswith("."):
        return False
    return p.parent in learner_paths(lab)


class Run:
    """One child `chaoslab check`: its output forwarded line by line, and when its first
    verdict line came."""

    def __init__(self, lab: Lab, extra: Sequence[str], saved_at: float | None) -> None:
        args = [sys.executable, "-m", "harness.cli", "check", str(lab.root), *extra]
        self.saved_at = saved_at
        self.first_verdict: float | None = None
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=PROJECT_ROOT,
            start_new_session=True,  # Ctrl-C reaches watch only; watch stops the child
        )
        self._reader = threading.Thread(target=self._forward, daemon=True)
        self._reader.start()

    def _forward(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.first_verdict is None and line.lstrip().startswith(("PASS ", "FAIL ")):
                self.first_verdict = time.monotonic()
                if self.saved_at is not None:
                    took = self.first_verdict - self.saved_at
                    print(f"(first verdict {took:.1f} s after the save)", flush=True)
            print(line, end="", flush=True)

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Cancel the run; its lab is torn down before this returns."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=CANCEL_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5.0)


def _clear() -> None:
    if sys.stdout.isatty():
        print("\033[2J\033[H", end="", flush=True)


def watch_lab(lab: Lab, extra: Sequence[str] = (), stop: threading.Event | None = None) -> int:
    """Run the checks now and after each save, until Ctrl-C (KeyboardInterrupt, raised on)."""
    files = ", ".join(lab.learner_files)
    print(f"Watching {files} of '{lab.slug}': the checks run again on each save.", flush=True)
    run = Run(lab, extra, saved_at=None)
    try:
        for changes in watch(
            *learner_paths(lab),
            watch_filter=lambda change, path: (
                change != Change.deleted and is_learner_file(lab, path)
            ),
            debounce=DEBOUNCE_MS,
            stop_event=stop,
            raise_interrupt=True,
        ):
            saved_at = time.monotonic()
            names = sorted({Path(path).name for _, path in changes})
            if run.running():
                print(f"\n{', '.join(names)} saved: cancelling the run in progress...", flush=True)
            run.stop()
            _clear()
            print(f"{', '.join(names)} saved: checking again.", flush=True)
            run = Run(lab, extra, saved_at=saved_at)
    finally:
        run.stop()  # also on Ctrl-C and SIGTERM, which the CLI reports once this returns
    return 0
