"""The learner's progress: per lab, the last verdict, the best one, and the hints used.

Kept in the per-user cache, keyed by the lab's folder, so that two checkouts (a course
repository and a copy, or two classes) never overwrite each other's progress. A damaged file
counts as empty, with a warning, and is rewritten at the next save.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from harness.files import write_atomically
from harness.lab import Lab
from harness.tools import cache_root

# What a lab's entry may hold; anything else makes the file unreadable.
FIELDS: dict[str, type] = {
    "slug": str,
    "passed": int,
    "total": int,
    "ok": bool,
    "when": str,
    "hints": int,
    "best": int,
    "runs": int,
}
_warned: set[str] = set()


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"chaoslab: warning: {message}", file=sys.stderr)


def status_file() -> Path:
    return cache_root() / "status.json"


def key(lab: Lab) -> str:
    """A lab's entry is its folder: the same slug in another checkout is another entry."""
    return str(lab.root.resolve())


def load() -> dict[str, dict[str, object]]:
    """Every lab's entry, by folder; a damaged file counts as empty, with a warning."""
    path = status_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}  # a cache that is not a folder is said when something needs to be saved
    except OSError as exc:
        _warn(f"cannot read your progress in {path} ({exc.strerror or exc}); showing none.")
        return {}
    except ValueError as exc:  # not JSON, or not UTF-8
        _damaged(path, f"not JSON: {exc}")
        return {}
    if not isinstance(data, dict):
        _damaged(path, f"a JSON {type(data).__name__}, not an object of labs")
        return {}
    for name, entry in data.items():
        problem = _entry_problem(entry)
        if problem:
            _damaged(path, f"the entry of '{name}' {problem}")
            return {}
    return data


def entry(lab: Lab) -> dict[str, object]:
    return load().get(key(lab), {})


def _entry_problem(entry: object) -> str:
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not an object"
    for name, kind in FIELDS.items():
        # type(), not isinstance(): true is not a number of hints
        if name in entry and type(entry[name]) is not kind:
            return f"has {name} = {json.dumps(entry[name])}, not a {kind.__name__}"
    return ""


def _damaged(path: Path, why: str) -> None:
    _warn(
        f"{path} is not a status file chaoslab can read ({why}); treating it as empty. "
        "It is rewritten at your next 'check' or 'hint'; delete it to start afresh now."
    )


def save(lab: Lab, **fields: object) -> None:
    """Record progress; written to a temp file and renamed, so a reader never sees half."""
    status = load()
    status.setdefault(key(lab), {}).update(slug=lab.slug, **fields)
    path = status_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(status, indent=2) + "\n")
    except OSError as exc:
        _warn(
            f"cannot save your progress in {path} ({exc.strerror or exc}).\n  Fix: set "
            "XDG_CACHE_HOME to a writable folder (chaoslab keeps its cache in "
            "$XDG_CACHE_HOME/chaoslab)."
        )


def record_check(lab: Lab, passed: int, total: int, ok: bool) -> None:
    """A learner's run of the checks: the last verdict, the best one, how many runs."""
    before = entry(lab)
    best = before.get("best", 0)
    runs = before.get("runs", 0)
    save(
        lab,
        passed=passed,
        total=total,
        ok=ok,
        best=max(passed, best if isinstance(best, int) else 0),
        runs=(runs if isinstance(runs, int) else 0) + 1,
        when=time.strftime("%Y-%m-%d %H:%M"),
    )


def hints_used(lab: Lab) -> int:
    hints = entry(lab).get("hints", 0)
    return hints if isinstance(hints, int) and hints > 0 else 0


def describe(lab: Lab, status: dict[str, object]) -> tuple[str, str]:
    """A lab's state and its best verdict and hints, for `chaoslab list`."""
    total = status.get("total")
    if not total:
        state = "never run"
    elif status.get("ok"):
        state = "passing"
    else:
        state = f"failing ({status.get('passed')} of {total} checks pass)"
    extra = []
    if total:
        extra.append(f"best {status.get('best', status.get('passed'))}/{total}")
    hints = status.get("hints")
    if isinstance(hints, int) and hints > 0:
        extra.append(f"{hints} of {len(lab.hints)} hints")
    return state, ", ".join(extra)


def next_lab(labs: list[Lab], status: dict[str, dict[str, object]]) -> Lab | None:
    """The first lab in course order that does not pass yet."""
    for lab in labs:
        if not status.get(key(lab), {}).get("ok"):
            return lab
    return None
