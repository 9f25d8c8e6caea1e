"""Child processes the harness owns: labelled with the run, in their own process group, and
killed with the harness (PR_SET_PDEATHSIG) so that even `kill -9` of the harness leaves nothing
running for long; the reaper takes whatever slips through.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from harness.runs import OWNER_ENV, RUN_ENV, Owner

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def stamp(at: float) -> bytes:
    """The time a log line came, as `chaoslab logs` merges lines from every process by it."""
    return (
        time.strftime("%H:%M:%S", time.localtime(at)).encode()
        + f".{int(at * 1000) % 1000:03d} ".encode()
    )


_STAMP = re.compile(rb"\d\d:\d\d:\d\d\.\d{3} ")


def unstamp(line: bytes) -> bytes:
    """A log line as the process wrote it: without the time `stamp` put in front."""
    return line[13:] if _STAMP.match(line) else line


def _timestamp_lines(source: int, out: BinaryIO) -> None:
    """Copy a child's output to its log, each line prefixed with the time it came (the
    services' own loggers print none). Ends when every writer of the pipe is gone."""
    pending = b""
    with out, os.fdopen(source, "rb", buffering=0) as pipe:
        while True:
            try:
                chunk = pipe.read(65536)
            except OSError:
                break
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            now = stamp(time.time())
            out.write(b"".join(now + line + b"\n" for line in lines))
            out.flush()
        if pending:
            out.write(stamp(time.time()) + pending + b"\n")


class ChildProcess:
    """A command running in its own process group, its output appended to `log`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        run_id: str,
        log: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.user = user  # (uid, gid) to run as, for a program that refuses root (PostgreSQL)
        self.log = log
        self.cwd = cwd
        self.env = {
            **(env if env is not None else os.environ),
            RUN_ENV: run_id,
            OWNER_ENV: Owner.me().label(),  # lets any later reaper prove this run dead
        }
        self._popen: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> ChildProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        read_end, write_end = os.pipe()
        try:
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,  # its own process group: signals reach all of it
                user=self.user[0] if self.user else None,
                group=self.user[1] if self.user else None,
                extra_groups=[] if self.user else None,
                # PDEATHSIG fires when the spawning *thread* ends, so only the main
                # thread asks for it; a child started elsewhere is left to the reaper.
                preexec_fn=_die_with_parent if _in_main_thread() else None,  # noqa: PLW1509
            )
        except FileNotFoundError as exc:
            os.close(read_end)
            out.close()
            raise FileNotFoundError(
                f"cannot start '{self.name}': command '{self.argv[0]}' not found"
            ) from exc
        finally:
            os.close(write_end)
        self._pump = threading.Thread(
            target=_timestamp_lines, args=(read_end, out), name=f"log-{self.name}", daemon=True
        )
        self._pump.start()
        return self

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end and its output to be in the log; its exit code."""
        if self._popen is None:
            return None
        code = self._popen.wait(timeout)
        self._logs_flushed()
        return code

    def _logs_flushed(self, timeout: float = 2.0) -> None:
        """Once the process is gone, wait for the last of its output to reach the log."""
        if self._pump is not None and self._popen is not None and self._popen.poll() is not None:
            self._pump.join(timeout)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen else -1

    def signal(self, sig: int) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group and reap it; safe to call twice."""
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=5)
        self._logs_flushed(timeout=1.0)

    def stop(self, grace: float = 2.0) -> bool:
        """SIGTERM, then SIGKILL after `grace` seconds; a paused group is woken first. True when
        it was still running when its grace ended, and had to be killed."""
        if self._popen is None:
            return False
        killed = False
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGCONT)
                os.killpg(self._popen.pid, signal.SIGTERM)
            try:
                self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                killed = True
        self.kill()
        return killed

    def log_lines(self) -> list[str]:
        """Every whole line the process has written so far (stdout and stderr, across its
        restarts), as it wrote them: without the time stamp the log file adds."""
        self._logs_flushed()
        try:
            data = self.log.read_bytes()
        except OSError:
            return []
        # A line still being copied has no newline yet: it is not there until it has one.
        whole = data[: data.rfind(b"\n") + 1]
        return [unstamp(line).decode(errors="replace") for line in whole.splitlines()]

    def log_tail(self, lines: int = 20) -> str:
        self._logs_flushed()
        try:
            with self.log.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 16_384))
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
