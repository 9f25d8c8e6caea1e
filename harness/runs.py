"""A run's identity, its temp folder, and the reaper of runs whose harness died.

Everything a run starts carries `CHAOSLAB_RUN=<id>` in its environment (the process backend's
label, as a container label is Docker's). A run registers itself before it starts anything and
unregisters after it has stopped everything, so at the next start any process, folder or
container whose run's owner is gone is a leftover and is reaped (testcontainers' Ryuk, without a
sidecar).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path

RUN_ENV = "CHAOSLAB_RUN"
_DIR_PREFIX = "chaoslab-run-"

# Extra reapers (the docker backend registers one) called with the ids of dead runs.
_reapers: list[Callable[[Container[str]], None]] = []


def register_reaper(reaper: Callable[[Container[str]], None]) -> None:
    """Add a reaper (the docker backend's); it is called with the live runs (`id in live`)."""
    if reaper not in _reapers:
        _reapers.append(reaper)


def registry() -> Path:
    """Live runs, one file each; beside the runs' temp folders, because the reaper judges
    processes and folders machine-wide and must see every run of this user, whatever its
    XDG_CACHE_HOME."""
    path = Path(tempfile.gettempdir()) / f"chaoslab-registry-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, so a recycled pid is not taken for the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass
class Run:
    """One run of a lab: an id, a temp folder, and its entry in the registry."""

    id: str
    dir: Path

    @classmethod
    def create(cls) -> Run:
        reap_stale()
        run_id = secrets.token_hex(4)
        me = os.getpid()
        # Registered before the folder exists, so a concurrent reaper never takes it for litter.
        entry = {"owner_pid": me, "owner_start": process_start_time(me)}
        path = registry() / f"{run_id}.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(entry))
        partial.replace(path)  # atomic: a reader never sees half an entry
        directory = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{run_id}-"))
        return cls(run_id, directory)

    def close(self) -> None:
        """Remove the folder and the registry entry; call after everything is stopped."""
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (registry() / f"{self.id}.json").unlink()


def _owner_alive(entry: dict[str, object]) -> bool:
    pid = entry.get("owner_pid")
    if not isinstance(pid, int):
        return False
    started = entry.get("owner_start")
    if started is None:  # no /proc: a live pid is the best evidence there is
        return pid_alive(pid)
    return process_start_time(pid) == started


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (finished, not yet waited for) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def labelled_processes() -> Iterator[tuple[int, str]]:
    """(pid, run id) of every process on this machine that a chaoslab run started."""
    needle = f"{RUN_ENV}=".encode()
    me = str(os.getpid())
    proc_root = Path("/proc")
    if not proc_root.is_dir():  # not Linux: the reaper relies on the registry alone
        return
    for proc in proc_root.iterdir():
        if not proc.name.isdigit() or proc.name == me:
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                yield int(proc.name), item[len(needle) :].decode(errors="replace")
                break


def kill_run_processes(run_id: str) -> None:
    """SIGKILL every process (and its group) labelled with `run_id`."""
    for pid, owner in labelled_processes():
        if owner != run_id:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class LiveRuns:
    """`run_id in live` asks the registry at that moment, not from a snapshot: a run that
    registers while the reaper works is never taken for litter."""

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and is_live(run_id)


def is_live(run_id: str) -> bool:
    """True while the run's registry entry exists and its owner process is alive."""
    try:
        entry = json.loads((registry() / f"{run_id}.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(entry, dict) and _owner_alive(entry)


def reap_stale() -> set[str]:
    """Reap the leftovers of runs whose owner died; returns their ids.

    Each decision is made just before its action, against the registry as it is then; a run
    registers before it makes anything and unregisters after it removed everything, so a live
    run's folder, processes or containers are never reaped.
    """
    live = LiveRuns()
    dead = {path.stem for path in registry().glob("*.json") if path.stem not in live}
    orphans = {run for _, run in labelled_processes() if run not in live}
    for run_id in dead | orphans:
        if run_id not in live:
            kill_run_processes(run_id)
    for reaper in _reapers:
        reaper(live)
    tmp = Path(tempfile.gettempdir())
    for folder in tmp.glob(f"{_DIR_PREFIX}*"):
        run_id = folder.name[len(_DIR_PREFIX) :].split("-", 1)[0]
        if run_id not in live:
            shutil.rmtree(folder, ignore_errors=True)
    for run_id in dead:
        if run_id not in live:
            with contextlib.suppress(FileNotFoundError):
                (registry() / f"{run_id}.json").unlink()
    return dead | orphans
