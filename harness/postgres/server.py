"""A PostgreSQL for one run: a copy of the cached template in the run's folder, its own port,
labelled with the run (so the reaper takes it if the harness dies), stopped with the run. The
docker backend runs the same command in a container (harness.backends.docker).

It is set for a lab, not for keeping data: no fsync (a run's data dies with the run), and
every lock wait longer than 100 ms logged with its statement, which checks judge."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg

from harness.companion import start_companion
from harness.ports import HOST
from harness.postgres.program import DATABASE, SUPERUSER, Postgres, ensure_template
from harness.processes import ChildProcess
from harness.readiness import wait_answering
from harness.runs import unprivileged_ids

START_WITHIN = 30.0  # seconds until it accepts connections
LOCK_WAIT_LOGGED = "100ms"  # a lock wait this long or longer is logged (deadlock_timeout)
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",  # its library (LLVM) is not mounted into containers, and labs need no JIT
    "log_lock_waits": "on",
    "deadlock_timeout": LOCK_WAIT_LOGGED,
    "log_line_prefix": "%m [%p] ",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "max_connections": "40",
    "shared_buffers": "32MB",
    "unix_socket_directories": "",  # TCP only: no socket file in a shared folder
}


def command(server: Path, data: Path, listen: str, port: int) -> list[str]:
    argv = [str(server), "-D", str(data), "-c", f"port={port}", "-c", f"listen_addresses={listen}"]
    for name, value in SETTINGS.items():
        argv += ["-c", f"{name}={value}"]
    return argv


def in_container(server: Path, template: str, port: int) -> list[str]:
    """A container's command: copy `template` to the container's own data folder, then run
    the server on it (the docker backend and the Compose profile both start it so)."""
    data = "/tmp/pgdata"  # in the container: its data dies with it
    argv = command(server, Path(data), "0.0.0.0", port)
    return ["sh", "-c", f"cp -R {template} {data} && chmod 700 {data} && exec {shlex.join(argv)}"]


def url(address: str) -> str:
    """The connection URL of the run's database at `address` (host:port)."""
    return f"postgresql://{SUPERUSER}@{address}/{DATABASE}"


def accepts(address: str) -> bool:
    try:
        with psycopg.connect(url(address), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def wait_ready(address: str, gone: Callable[[], str | None], timeout: float = START_WITHIN) -> None:
    """Until PostgreSQL at `address` accepts a connection; a RunError if `gone()` says why it
    never will, or after `timeout`."""
    wait_answering("PostgreSQL", url(address), lambda: accepts(address), gone, timeout)


def copy_template(program: Postgres, folder: Path) -> Path:
    """The run's data folder, `folder`/data, copied from the template and owned by whoever
    runs PostgreSQL (for root: nobody, who may then pass through, not read, the run's folder)."""
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ensure_template(program), data, symlinks=True)
    data.chmod(0o700)
    ids = unprivileged_ids()
    if ids is not None:
        for passable in (folder.parent, folder):  # the run's folder, then this one
            passable.chmod(passable.stat().st_mode | 0o001)
        for root, dirs, files in os.walk(data):
            os.chown(root, *ids)
            for name in dirs + files:
                os.chown(os.path.join(root, name), *ids, follow_symlinks=False)
    return data


class PostgresServer:
    def __init__(self, program: Postgres, run_id: str, folder: Path, log: Path) -> None:
        self.program = program
        self.run_id = run_id
        self.folder = folder
        self.log = log
        self._process: ChildProcess | None = None

    def start(self, port: int) -> str:
        """Start it; host:port, once it accepts connections."""
        data = copy_template(self.program, self.folder)
        address = f"{HOST}:{port}"
        self._process = start_companion(
            "PostgreSQL",
            command(self.program.server, data, HOST, port),
            run_id=self.run_id,
            log=self.log,
            port=port,
            wait=lambda gone: wait_ready(address, gone),
            user=unprivileged_ids(),
        )
        return address

    def log_lines(self) -> list[str]:
        return self._process.log_lines() if self._process is not None else []

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None
