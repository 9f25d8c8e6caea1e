"""A run's identity, its temp folder, and the reaper of runs whose harness died.

Everything a run starts carries two labels: `CHAOSLAB_RUN=<id>` and `CHAOSLAB_OWNER=<owner>`
in a process's environment, `chaoslab.run` and `chaoslab.owner` on a container. The owner
label names the harness process exactly (machine, boot, pid namespace, pid and the pid's start
time), so the reaper decides from the label alone whether the run is dead: it reaps only what
it can prove dead, never a run merely absent from this user's registry (another terminal,
another TMPDIR, another CI job), and never another user's processes or folders. A run also
registers itself (in `$TMPDIR/chaoslab-registry-<uid>/`) before it makes its temp folder, so
its folder is judged the same way (testcontainers' Ryuk, without a sidecar).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

RUN_ENV = "CHAOSLAB_RUN"
OWNER_ENV = "CHAOSLAB_OWNER"
_DIR_PREFIX = "chaoslab-run-"
UNPRIVILEGED_USER = "nobody"  # who runs, for root, what refuses root (PostgreSQL)

# Extra reapers (the docker backend registers one), called at every reap.
_reapers: list[Callable[[], None]] = []


def register_reaper(reaper: Callable[[], None]) -> None:
    """Add a reaper (the docker backend's); it judges its own labels with `Owner`."""
    if reaper not in _reapers:
        _reapers.append(reaper)


def registry() -> Path:
    """Live runs, one file each; beside the runs' temp folders, because the reaper judges
    this temp folder's run folders and must see every run of this user that uses it."""
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


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _pid_namespace(pid: int | str = "self") -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return "-"


_ME: dict[int, Owner] = {}


@dataclass(frozen=True)
class Owner:
    """The harness process that owns a run, named so that any later process can tell for
    certain whether it is still the same process: a pid alone can be reused."""

    host: str
    boot: str
    pidns: str
    pid: int
    start: str | None

    @classmethod
    def me(cls) -> Owner:
        """This process, read once per process (a forked child is a new owner)."""
        pid = os.getpid()
        if pid not in _ME:
            _ME[pid] = cls(
                socket.gethostname(), _boot_id(), _pid_namespace(), pid, process_start_time(pid)
            )
        return _ME[pid]

    def label(self) -> str:
        return f"{self.host}/{self.boot}/{self.pidns}/{self.pid}/{self.start or '-'}"

    @classmethod
    def parse(cls, label: object) -> Owner | None:
        if not isinstance(label, str):
            return None
        parts = label.rsplit("/", 4)
        if len(parts) != 5 or not parts[3].isdigit():
            return None
        host, boot, pidns, pid, start = parts
        return cls(host, boot, pidns, int(pid), None if start == "-" else start)

    def provably_dead(self) -> bool:
        """True only when this owner is certainly gone; unknowable counts as alive."""
        here = Owner.me()
        if self.host != here.host:
            return False  # another machine or container: its pids mean nothing here
        if self.boot != here.boot and "-" not in (self.boot, here.boot):
            return True  # this machine has rebooted since: every process of then is gone
        if self.pidns != here.pidns:
            return False  # another pid namespace: its pids mean nothing here
        if self.start is None:  # no /proc: a live pid is the best evidence there is
            return not pid_alive(self.pid)
        return process_start_time(self.pid) != self.start


@dataclass
class Run:
    """One run of a lab: an id, a temp folder, and its entry in the registry."""

    id: str
    dir: Path

    @classmethod
    def create(cls) -> Run:
        reap_stale()
        run_id = secrets.token_hex(4)
        owner = Owner.me()
        # Registered before the folder exists, so a concurrent reaper never takes it for litter.
        entry = {"owner": owner.label(), "owner_pid": owner.pid, "owner_start": owner.start}
        path = registry() / f"{run_id}.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(entry))
        partial.replace(path)  # atomic: a reader never sees half an entry
        directory = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{run_id}-"))
        return cls(run_id, directory)

    def close(self) -> None:
        """Remove the folder and the registry entry; call after everything is stopped.

        First a sweep by the run's label: a service may have forked a grandchild into a
        session of its own, out of reach of its process group."""
        kill_run_processes(self.id)
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (registry() / f"{self.id}.json").unlink()


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


@dataclass(frozen=True)
class LabelledProcess:
    """A process some chaoslab run started, as its labels and the kernel describe it."""

    pid: int
    run: str
    owner: Owner | None
    uid: int


def labelled_processes() -> Iterator[tuple[int, str]]:
    """(pid, run id) of every process on this machine that a chaoslab run started."""
    for process in run_processes():
        yield process.pid, process.run


def run_processes() -> Iterator[LabelledProcess]:
    """Every process on this machine that carries a chaoslab run label."""
    run_needle, owner_needle = f"{RUN_ENV}=".encode(), f"{OWNER_ENV}=".encode()
    me = str(os.getpid())
    proc_root = Path("/proc")
    if not proc_root.is_dir():  # not Linux: nothing to scan
        return
    for proc in proc_root.iterdir():
        if not proc.name.isdigit() or proc.name == me:
            continue
        try:
            environ = (proc / "environ").read_bytes()
            uid = proc.stat().st_uid
        except OSError:
            continue
        run, owner = None, None
        for item in environ.split(b"\0"):
            if item.startswith(run_needle):
                run = item[len(run_needle) :].decode(errors="replace")
            elif item.startswith(owner_needle):
                owner = Owner.parse(item[len(owner_needle) :].decode(errors="replace"))
        if run is not None:
            yield LabelledProcess(int(proc.name), run, owner, uid)


def _kill_group_and_process(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) as which a harness run by root starts a program that refuses to run as root
    (PostgreSQL): `nobody`'s. None for any other user, whose programs run as themselves."""
    if os.getuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        return (65534, 65534)
    return entry.pw_uid, entry.pw_gid


def runs_as_mine(uid: int) -> bool:
    """Whether a process of `uid` may be one this user's runs started: its own, or (for root)
    the unprivileged user its runs start PostgreSQL as. Its run label decides the rest."""
    if uid == os.getuid():
        return True
    dropped = unprivileged_ids()
    return dropped is not None and uid == dropped[0]


def kill_run_processes(run_id: str) -> None:
    """SIGKILL every process (and its group) of this user labelled with `run_id`."""
    for process in run_processes():
        if process.run == run_id and runs_as_mine(process.uid):
            _kill_group_and_process(process.pid)


def is_live(run_id: str) -> bool:
    """True while the run's registry entry exists and its owner is not provably dead."""
    try:
        entry = json.loads((registry() / f"{run_id}.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(entry, dict):
        return False
    owner = Owner.parse(entry.get("owner"))
    if owner is None:  # an entry of an older harness: pid and start time
        pid, started = entry.get("owner_pid"), entry.get("owner_start")
        if not isinstance(pid, int):
            return False
        return pid_alive(pid) if started is None else process_start_time(pid) == started
    return not owner.provably_dead()


def reap_stale() -> set[str]:
    """Reap the leftovers of runs whose owner is provably dead; returns their ids.

    Processes and containers are judged by their own owner label, at the moment of the
    action; this temp folder's run folders and registry entries by the registry, which a
    run writes before it makes its folder and removes after it removed everything.
    """
    reaped = set()
    for process in run_processes():
        if not runs_as_mine(process.uid) or process.owner is None:
            continue  # another user's, or no proof either way: never ours to kill
        if process.owner.provably_dead():
            _kill_group_and_process(process.pid)
            reaped.add(process.run)
    for reaper in _reapers:
        reaper()
    dead = {path.stem for path in registry().glob("*.json") if not is_live(path.stem)}
    tmp = Path(tempfile.gettempdir())
    for folder in tmp.glob(f"{_DIR_PREFIX}*"):
        run_id = folder.name[len(_DIR_PREFIX) :].split("-", 1)[0]
        with contextlib.suppress(OSError):
            if folder.stat().st_uid != os.getuid():
                continue
        if not is_live(run_id):
            shutil.rmtree(folder, ignore_errors=True)
    for run_id in dead:
        if not is_live(run_id):
            with contextlib.suppress(FileNotFoundError):
                (registry() / f"{run_id}.json").unlink()
    return reaped | dead
