"""chaoslab power loss, inside a lab's Python service: what would a power cut leave on disk?

A kill -9 loses nothing that reached the kernel: only a power cut loses what was written but
not fsynced. To tell the two apart without pulling a plug, this module keeps, for each file
under $STATE_DIR that the service writes from Python, a shadow copy of the file as it was at
its last os.fsync/os.fdatasync. The harness (`Faults.power_loss`) kills the service and puts
the shadows back in place of the files: what was never synced is gone.

It writes to $CHAOSLAB_DURABILITY (a folder of the run): `journal` (one JSON line per event:
baseline, synced, renamed, removed) and the shadow files. Events, in order:
- the first time this process opens a file for writing: its content then is what the disk
  holds (`baseline`; no file: `absent`);
- after a successful fsync of a file: its content (`synced`), copied whole, or only the new
  bytes when the file was opened only for appending since its last copy;
- os.rename/os.replace carry the durable state of the source to the target; os.remove and
  os.unlink drop the file (both taken as durable: a lab about directory fsyncs would change
  this).
Files SQLite writes are not seen (it opens and fsyncs them in C): a power loss leaves them
as they are. Nothing here runs unless the harness set $CHAOSLAB_DURABILITY.
"""

import builtins
import io
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

_DIR = os.environ.get("CHAOSLAB_DURABILITY", "")
_STATE = os.path.realpath(os.environ.get("STATE_DIR", "/nonexistent")) + os.sep
_lock = threading.RLock()
_open = io.open
_os_open = os.open
_fsync = os.fsync
_fdatasync = getattr(os, "fdatasync", None)
_rename = os.rename
_replace = os.replace
_remove = os.remove
_unlink = os.unlink
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Shadow:
    """The durable copy of one file: a shadow file whose first `length` bytes are it."""

    def __init__(self, name: str, length: int) -> None:
        self.name = name
        self.length = length
        self.append_only = True  # opened only with O_APPEND since the copy was made


_seen: set[str] = set()  # files this process opened for writing (a baseline is recorded)
_shadows: dict[str, _Shadow] = {}
_counter = [0]


def _state_path(path: object) -> str | None:
    """The real path of `path` if it names a file under STATE_DIR, else None."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None
    return real if real.startswith(_STATE) else None


def _journal(event: dict[str, object]) -> None:
    line = (json.dumps(event) + "\n").encode()
    fd = _os_open(os.path.join(_DIR, "journal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _copy(path: str) -> None:
    """Record the whole of `path` as its durable content (no file: absent)."""
    _counter[0] += 1
    name = f"shadow-{os.getpid()}-{_counter[0]}"
    try:
        with _open(path, "rb") as source:
            data = source.read()
    except FileNotFoundError:
        _shadows.pop(path, None)
        _journal({"event": "absent", "path": path})
        return
    with _open(os.path.join(_DIR, name), "wb") as shadow:
        shadow.write(data)
    _shadows[path] = _Shadow(name, len(data))
    _journal({"event": "synced", "path": path, "shadow": name, "length": len(data)})


def _extend(path: str, shadow: _Shadow) -> None:
    """Only appended to since the last copy: add the new bytes to the shadow."""
    with _open(path, "rb") as source:
        source.seek(shadow.length)
        new = source.read()
    with _open(os.path.join(_DIR, shadow.name), "r+b") as file:
        file.seek(shadow.length)
        file.write(new)
        file.truncate()
    shadow.length += len(new)
    _journal({"event": "synced", "path": path, "shadow": shadow.name, "length": shadow.length})


def _opened_for_writing(path: str, append_only: bool) -> None:
    with _lock:
        if path not in _seen:
            _seen.add(path)
            _copy(path)  # what earlier lives left on disk counts as durable
        shadow = _shadows.get(path)
        if shadow is not None and not append_only:
            shadow.append_only = False


def _synced(fd: object) -> None:
    try:
        number = fd if isinstance(fd, int) else fd.fileno()  # type: ignore[attr-defined]
        path = _state_path(os.readlink(f"/proc/self/fd/{number}"))
    except (OSError, AttributeError, ValueError):
        return
    if path is None or not os.path.isfile(path):
        return
    with _lock:
        shadow = _shadows.get(path)
        size = os.path.getsize(path)
        if shadow is not None and shadow.append_only and size >= shadow.length:
            _extend(path, shadow)
        else:
            _copy(path)


def _patched_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
    path = _state_path(file) if any(c in mode for c in "wax+") else None
    if path is None:
        return _open(file, mode, *args, **kwargs)
    # Before opening: "w" truncates, and the baseline is from before.
    _opened_for_writing(path, append_only="a" in mode and "+" not in mode)
    emptied = "w" in mode and _size(path) > 0
    handle = _open(file, mode, *args, **kwargs)
    if emptied:
        _truncated(path)
    return handle


def _patched_os_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
    real = _state_path(path) if flags & _WRITE_FLAGS else None
    if real is None:
        return _os_open(path, flags, *args, **kwargs)
    appending = bool(flags & os.O_APPEND) and not flags & os.O_TRUNC
    _opened_for_writing(real, append_only=appending)
    emptied = bool(flags & os.O_TRUNC) and _size(real) > 0
    fd = _os_open(path, flags, *args, **kwargs)
    if emptied:
        _truncated(real)
    return fd


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _truncated(path: str) -> None:
    """A file with data was just emptied by an open for writing: a crash point may be armed
    on exactly this (`Faults.crash_after_truncate`): the moment an in-place rewrite is torn."""
    crash_points = sys.modules.get("sitecustomize")
    reached = getattr(crash_points, "reached", None)
    if reached is not None:
        reached("truncates", f"emptying {os.path.basename(path)} to rewrite it")


def _patched_fsync(fd):  # type: ignore[no-untyped-def]
    _fsync(fd)
    _synced(fd)


def _patched_fdatasync(fd):  # type: ignore[no-untyped-def]
    assert _fdatasync is not None
    _fdatasync(fd)
    _synced(fd)


def _moved(real_move: Callable[..., None]) -> Callable[..., None]:
    def move(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        source, target = _state_path(src), _state_path(dst)
        with _lock:
            real_move(src, dst, *args, **kwargs)
            if source is None and target is None:
                return
            _journal({"event": "renamed", "path": source, "to": target})
            shadow = _shadows.pop(source, None) if source else None
            _seen.discard(source or "")
            if target is not None:
                _seen.add(target)
                if shadow is not None:
                    _shadows[target] = shadow
                else:
                    _shadows.pop(target, None)

    return move


def _removed(real_remove: Callable[..., None]) -> Callable[..., None]:
    def remove(path: Any, *args: Any, **kwargs: Any) -> None:
        real = _state_path(path)
        with _lock:
            real_remove(path, *args, **kwargs)
            if real is not None:
                _journal({"event": "removed", "path": real})
                _shadows.pop(real, None)
                _seen.discard(real)

    return remove


if _DIR and os.path.isdir(_DIR):
    builtins.open = io.open = _patched_open
    os.open = _patched_os_open
    os.fsync = _patched_fsync
    if _fdatasync is not None:
        os.fdatasync = _patched_fdatasync
    os.rename = _moved(_rename)
    os.replace = _moved(_replace)
    os.remove = _removed(_remove)
    os.unlink = _removed(_unlink)
