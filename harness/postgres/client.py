"""What checks use of the run's PostgreSQL: connections, and the lock waits it logged.

A lock wait is judged from PostgreSQL's own log (`log_lock_waits`), not from what a service
says or from a client's clock: the server saw who waited, for which lock, and how long."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from harness.postgres.server import url

_LINE = re.compile(r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC) \[(?P<pid>\d+)\] (?P<rest>.*)")
_ACQUIRED = re.compile(r"LOG:\s+process \d+ acquired (?P<lock>.+?) after (?P<ms>[\d.]+) ms")
_WAITING = re.compile(r"LOG:\s+process \d+ still waiting for (?P<lock>.+?) after (?P<ms>[\d.]+) ms")
_STATEMENT = re.compile(r"STATEMENT:\s+(?P<sql>.*)")


@dataclass(frozen=True)
class LockWait:
    """A statement that waited for a lock another transaction held."""

    waited: float  # seconds; for one never granted (`granted` False), how long it had waited
    lock: str  # "ShareLock on transaction 745"
    statement: str  # the statement that waited (its first line), "" when not logged
    pid: int  # the server process that waited (one per connection)
    at: float | None  # unix time of the line that ended (or last reported) the wait
    granted: bool = True

    def __str__(self) -> str:
        sql = f" ({self.statement[:160]})" if self.statement else ""
        how = "waited" if self.granted else "was still waiting after"
        return f"a statement {how} {self.waited:.2f} s for {self.lock}{sql}"


def parse_lock_waits(lines: list[str]) -> list[LockWait]:
    """Every lock wait PostgreSQL logged: granted ones with their whole wait, and ones still
    waiting when the log ends (a connection closed or a run stopped mid-wait)."""
    waits: list[LockWait] = []
    pending: dict[int, LockWait] = {}  # pid -> its latest "still waiting"
    last: dict[int, int] = {}  # pid -> index in waits of its latest line, for its STATEMENT
    for text in lines:
        line = _LINE.search(text)
        if line is None:
            continue
        pid, rest = int(line.group("pid")), line.group("rest")
        at = _epoch(line.group("at"))
        if (match := _ACQUIRED.search(rest)) is not None:
            pending.pop(pid, None)
            waits.append(
                LockWait(float(match.group("ms")) / 1000, match.group("lock"), "", pid, at)
            )
            last[pid] = len(waits) - 1
        elif (match := _WAITING.search(rest)) is not None:
            pending[pid] = LockWait(
                float(match.group("ms")) / 1000, match.group("lock"), "", pid, at, granted=False
            )
        elif (match := _STATEMENT.search(rest)) is not None:
            sql = match.group("sql").strip()
            if pid in pending and not pending[pid].statement:
                wait = pending[pid]
                pending[pid] = LockWait(wait.waited, wait.lock, sql, pid, wait.at, False)
            elif pid in last and not waits[last[pid]].statement:
                wait = waits[last[pid]]
                waits[last[pid]] = LockWait(wait.waited, wait.lock, sql, pid, wait.at)
                del last[pid]
    return waits + list(pending.values())


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.strptime(
            stamp.replace(" UTC", "+0000"), "%Y-%m-%d %H:%M:%S.%f%z"
        ).timestamp()
    except ValueError:
        return None


class PostgresHandle:
    """The run's database, as checks reach it (straight, never through a proxy)."""

    def __init__(self, address: str, log_lines: Callable[[], list[str]]) -> None:
        self.address = address
        self.url = url(address)
        self._log_lines = log_lines

    def connect(self) -> psycopg.Connection:
        """A new connection in autocommit (close it, or use it in a `with`)."""
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def lock_waits(self) -> list[LockWait]:
        """Every lock wait of 100 ms or more so far, as PostgreSQL logged it."""
        return parse_lock_waits(self._log_lines())

    def log_lines(self) -> list[str]:
        return self._log_lines()
