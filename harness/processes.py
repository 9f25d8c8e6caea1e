"""Child processes the harness owns: labelled with the run, in their own process group, and
killed with the harness (PR_SET_PDEATHSIG) so that even `kill -9` of the harness leaves nothing
running for long; the reaper takes whatever slips through.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.runs import OWNER_ENV, RUN_ENV, Owner

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


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
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.cwd = cwd
        self.env = {
            **(env if env is not None else os.environ),
            RUN_ENV: run_id,
            OWNER_ENV: Owner.me().label(),  # lets any later reaper prove this run dead
        }
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: signals reach all of it
                    # PDEATHSIG fires when the spawning *thread* ends, so only the main
                    # thread asks for it; a child started elsewhere is left to the reaper.
                    preexec_fn=_die_with_parent if _in_main_thread() else None,  # noqa: PLW1509
                )
            except FileNotFoundError as exc:
                raise FileNotFoundError(
                    f"cannot start '{self.name}': command '{self.argv[0]}' not found"
                ) from exc
        return self

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

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; a paused group is woken first."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGCONT)
                os.killpg(self._popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=grace)
        self.kill()

    def log_tail(self, lines: int = 20) -> str:
        try:
            with self.log.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 16_384))
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
