"""Power loss, the harness's half: put back what a service's files held at their last fsync.

The service's half (`site/chaoslab_durability.py`) journals, for each file under its STATE_DIR
it writes from Python, a shadow copy as of its last fsync. After the service was killed, this
replays the journal and puts every file back to its shadow: bytes written but never synced are
gone, a file never synced is gone, as after a power cut. The journal is then cleared: what is
on disk now is what the next life of the service starts from.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

JOURNAL = "journal"


def durability_dir(run_dir: Path, service: str) -> Path:
    return run_dir / "durability" / service


@dataclass
class Durable:
    """A file's content as of its last fsync: the first `length` bytes of `shadow`."""

    shadow: str
    length: int


ABSENT = "absent"  # the file did not exist when last made durable


@dataclass
class Reverted:
    """What a power loss did to a service's files."""

    rolled_back: dict[str, int] = field(default_factory=dict)  # path -> bytes it holds now
    removed: list[str] = field(default_factory=list)  # never synced

    def __str__(self) -> str:
        parts = [
            f"{Path(p).name} back to its last fsync ({n} bytes)"
            for p, n in self.rolled_back.items()
        ]
        parts += [f"{Path(p).name} was never synced: gone" for p in self.removed]
        return "; ".join(parts) or "nothing unsynced to lose"


def durable_state(journal: Path) -> dict[str, Durable | str]:
    """The durable state of each journalled file: its shadow, or ABSENT. A half-written last
    line (the service died writing it) is ignored: its fsync had not returned."""
    state: dict[str, Durable | str] = {}
    try:
        lines = journal.read_text().splitlines()
    except FileNotFoundError:
        return state
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind, path = event.get("event"), event.get("path")
        if kind == "synced":
            state[path] = Durable(event["shadow"], int(event["length"]))
        elif kind == "absent":
            state[path] = ABSENT
        elif kind == "removed":
            state.pop(path, None)
        elif kind == "renamed":
            moved = state.pop(path, None) if path else None
            target = event.get("to")
            if target:
                if moved is None:
                    state.pop(target, None)  # not written from Python: left as it is
                else:
                    state[target] = moved
    return state


def revert_to_durable(run_dir: Path, service: str) -> Reverted:
    """Put `service`'s files back to their last fsync. Call only while it is down."""
    folder = durability_dir(run_dir, service)
    done = Reverted()
    for path, durable in durable_state(folder / JOURNAL).items():
        target = Path(path)
        if durable == ABSENT:
            if target.is_file():
                done.removed.append(path)
                target.unlink()
            continue
        assert isinstance(durable, Durable)
        with open(folder / durable.shadow, "rb") as shadow:
            content = shadow.read(durable.length)
        current = target.read_bytes() if target.is_file() else None
        if current == content:
            continue
        done.rolled_back[path] = len(content)
        scratch = target.with_name(target.name + ".chaoslab-revert")
        scratch.write_bytes(content)
        os.replace(scratch, target)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return done
