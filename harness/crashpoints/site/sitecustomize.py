"""chaoslab crash points, inside a lab's Python service (put on its path by the harness).

A crash at a moment in time rarely lands where it matters; this one lands at a point in the
service's own execution: right after its Nth database commit that changed rows, counted from
the moment the harness armed it. The harness arms it by writing the JSON file named by
$CHAOSLAB_CRASHPOINT ({"id": ..., "after_commits": N}); the service renames it to `.fired`
and dies at once (no finally blocks, no atexit: like kill -9) when the point is reached.

Every sqlite3 connection is watched: an explicit commit(), the end of a `with db:` block, or a
write statement that autocommits. A commit is seen when the connection has left its
transaction and `total_changes` grew since the last one seen. Nothing here runs unless the
harness set $CHAOSLAB_CRASHPOINT, and nothing costs more than a stat() until it is armed.
"""

import json
import os
import sqlite3
import sys

_ARM_FILE = os.environ.get("CHAOSLAB_CRASHPOINT", "")
_counts: dict[str, int] = {}


def _armed() -> dict[str, object] | None:
    try:
        with open(_ARM_FILE, encoding="utf-8") as file:
            spec = json.load(file)
    except (OSError, ValueError):
        return None
    return spec if isinstance(spec, dict) else None


def _after(connection: "sqlite3.Connection") -> None:
    """Called after anything that may have committed; crashes if this was the armed commit."""
    if connection.in_transaction:
        return
    changes = connection.total_changes
    if changes <= getattr(connection, "_chaoslab_seen", 0):
        return
    connection._chaoslab_seen = changes  # type: ignore[attr-defined]
    reached("commits", "database commit")


def reached(kind: str, what: str) -> None:
    """One more `kind` event happened (a commit, a truncation): crash if it is the armed one.

    The armed spec counts one kind ({"after_commits": N} or {"after_truncates": N}); events of
    another kind do not count."""
    if not _ARM_FILE or not os.path.exists(_ARM_FILE):
        return
    spec = _armed()
    if spec is None or f"after_{kind}" not in spec:
        return
    key = str(spec.get("id"))
    _counts[key] = _counts.get(key, 0) + 1
    if _counts[key] < int(spec[f"after_{kind}"]):  # type: ignore[call-overload]
        return
    try:
        os.replace(_ARM_FILE, _ARM_FILE + ".fired")  # a restarted service is not armed
    except OSError:
        return  # disarmed meanwhile
    sys.stderr.write(f"chaoslab: crash point: died right after {what} (#{_counts[key]})\n")
    sys.stderr.flush()
    os._exit(137)  # like SIGKILL (which a container's pid 1 cannot send itself)


class _Cursor(sqlite3.Cursor):
    def execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().execute(*args, **kwargs)
        _after(self.connection)
        return result

    def executemany(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().executemany(*args, **kwargs)
        _after(self.connection)
        return result

    def executescript(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().executescript(*args, **kwargs)
        _after(self.connection)
        return result


class _Connection(sqlite3.Connection):
    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._chaoslab_seen = self.total_changes

    def cursor(self, factory=_Cursor):  # type: ignore[no-untyped-def]
        return super().cursor(factory)

    def execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().execute(*args, **kwargs)
        _after(self)
        return result

    def executemany(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().executemany(*args, **kwargs)
        _after(self)
        return result

    def executescript(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().executescript(*args, **kwargs)
        _after(self)
        return result

    def commit(self):  # type: ignore[no-untyped-def]
        super().commit()
        _after(self)

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        result = super().__exit__(*exc)
        _after(self)
        return result


_connect = sqlite3.connect


def _watched_connect(*args, **kwargs):  # type: ignore[no-untyped-def]
    if "factory" not in kwargs and len(args) < 6:
        kwargs["factory"] = _Connection
    return _connect(*args, **kwargs)


if _ARM_FILE:
    sqlite3.connect = _watched_connect
    sqlite3.dbapi2.connect = _watched_connect

if os.environ.get("CHAOSLAB_DURABILITY"):
    import chaoslab_durability  # type: ignore[import-not-found]  # noqa: F401

if os.environ.get("CHAOSLAB_REQUEST_LOG"):
    import chaoslab_requests  # type: ignore[import-not-found]  # noqa: F401
