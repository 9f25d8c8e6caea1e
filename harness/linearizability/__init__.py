"""Linearizability, judged by porcupine (the real one, as a Go program: see `program`).

`linearizable(history, model=...)` encodes a recorded history for porcupine and turns its
answer into a CheckResult: on a violation, the operations that cannot be ordered (clients,
values, times, the faults active meanwhile) and the path of porcupine's HTML picture of it,
annotated with the fault timeline. A checker that runs out of time gives "unknown": a failing
result, never a pass.

How operations are read (`Operation.f`, `.value`, `.result`), per model:
- "register": `read` (result: the value, None if never written), `write` (value: the value);
- "cas-register": also `cas` (value: (expected, new); result: True if it swapped);
- "kv": `get` (value: the key; result: the value, None or "" if absent), `put` and `append`
  (value: (key, value)). Each key is checked on its own.
Statuses: `ok` happened when answered; `fail` surely did not happen (left out); `unknown`
(or still `invoke`) may have happened at any moment after its call: a write is kept with no
return, a read is left out (it changed nothing and told nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from harness.artifacts import Artifact
from harness.checkers import CheckResult
from harness.faults import Timeline
from harness.history import Operation
from harness.linearizability.program import (
    PORCUPINE_VERSION,
    find_porcupine,
    install_porcupine,
    run_porcupine,
)

__all__ = [
    "PORCUPINE_VERSION",
    "find_porcupine",
    "install_porcupine",
    "linearizable",
]

Model = Literal["register", "cas-register", "kv"]
OPERATIONS: dict[str, tuple[str, ...]] = {
    "register": ("read", "write"),
    "cas-register": ("read", "write", "cas"),
    "kv": ("get", "put", "append"),
}
READS = ("read", "get")
SHOWN_ORDERED = 2  # operations of the longest consistent order shown before where it breaks
SHOWN_STUCK = 3  # operations shown that cannot come next


def linearizable(
    history: Iterable[Operation],
    *,
    model: Model = "kv",
    key: Callable[[Operation], object] | None = None,
    timeline: Timeline | None = None,
    visualization: Artifact | Path | None = None,
    timeout: float = 10.0,
    explain: float = 5.0,
) -> CheckResult:
    """Whether some order of the operations, each taking effect at one instant between its
    call and its answer, explains every answer (porcupine). `key` splits the history into
    independent objects (default: the kv key; one object for registers). `timeout` bounds
    the verdict; `explain`, on a violation, the story and the picture."""
    if model not in OPERATIONS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(OPERATIONS)}")
    ops = list(history)
    origin = min((op.start for op in ops), default=0.0)
    encoded = [_encode(op, model, key, origin) for op in ops]
    request: dict[str, Any] = {
        "model": model,
        "timeout_ms": max(1, int(timeout * 1000)),
        "explain_ms": max(1, int(explain * 1000)),  # 1 ms: the verdict alone, no story
        "operations": [e for e in encoded if e is not None],
        "annotations": _annotations(timeline, origin, ops),
        "visualization": "",
    }
    where = visualization.path if isinstance(visualization, Artifact) else visualization
    shown = visualization.kept if isinstance(visualization, Artifact) else visualization
    if where is not None:
        where.parent.mkdir(parents=True, exist_ok=True)
        request["visualization"] = str(where)
    answer = run_porcupine(request, timeout=timeout + 2 * explain + 10)
    if answer.get("result") == "Error":
        raise ValueError(f"porcupine refused the history: {answer.get('error')}")
    return _verdict(answer, ops, model, origin, timeline, shown)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _encode(
    op: Operation, model: Model, key: Callable[[Operation], object] | None, origin: float
) -> dict[str, Any] | None:
    if op.f not in OPERATIONS[model]:
        raise ValueError(
            f"operation {op.id} ({op.describe()}): '{op.f}' is not an operation of the "
            f"{model} model ({', '.join(OPERATIONS[model])})"
        )
    done = op.status == "ok"
    if op.status == "fail" or (op.f in READS and not done):
        return None
    pair = op.f in ("put", "append", "cas")
    if pair and (not isinstance(op.value, list | tuple) or len(op.value) != 2):
        raise ValueError(f"operation {op.id} ({op.describe()}): its value must be a pair")
    if key is not None:
        name = key(op)
    elif model == "kv":
        name = op.value[0] if pair else op.value
    else:
        name = ""
    encoded: dict[str, Any] = {
        "id": op.id,
        "client": op.client,
        "f": op.f,
        "key": _text(name) or "",
        "value": None,
        "new": None,
        "call": _ns(op.start, origin),
        "return": _ns(op.end, origin) if done and op.end is not None else None,
        "output": {"unknown": not done},
    }
    if op.f == "cas":
        encoded["value"], encoded["new"] = _text(op.value[0]), _text(op.value[1])
        encoded["output"]["ok"] = bool(op.result)
    elif op.f in ("put", "append"):
        encoded["value"] = _text(op.value[1])
    elif op.f == "write":
        encoded["value"] = _text(op.value)
    else:
        encoded["output"]["value"] = _text(op.result)
    return encoded


def _ns(moment: float, origin: float) -> int:
    return round((moment - origin) * 1e9)


def _annotations(
    timeline: Timeline | None, origin: float, ops: list[Operation]
) -> list[dict[str, Any]]:
    if timeline is None:
        return []
    last = max((op.end or op.start for op in ops), default=origin)
    return [
        {
            "start": _ns(event.start, origin),
            "end": _ns(event.end if event.end is not None else last, origin),
            "text": event.description,
            "details": event.description,
        }
        for event in timeline.events
    ]


def _verdict(
    answer: dict[str, Any],
    ops: list[Operation],
    model: Model,
    origin: float,
    timeline: Timeline | None,
    shown: Path | None,
) -> CheckResult:
    count = answer.get("operations", 0)
    keys = answer.get("keys", 0)
    checked = f"{count} operations on {keys} key(s), checked by porcupine v{PORCUPINE_VERSION}"
    expected = (
        "some order of the operations, each at one instant between its call and its answer, "
        "explains every answer"
    )
    name = f"linearizable ({model})"
    result = answer.get("result")
    if result == "Ok":
        return CheckResult(name, expected, f"linearizable: {checked}")
    if result != "Illegal":
        return CheckResult(
            name,
            expected,
            f"unknown: porcupine did not decide within its time over {checked}",
            [
                "the checker ran out of time; an undecided history is not a pass "
                "(fewer concurrent clients or a shorter history decide faster)"
            ],
        )
    by_id = {op.id: op for op in ops}
    errors: list[str] = []
    stuck_ops: list[Operation] = []
    for violation in answer.get("violations", []):
        ordered = [by_id[i] for i in violation["ordered"] if i in by_id]
        stuck = [by_id[i] for i in violation["stuck"] if i in by_id]
        stuck_ops += stuck
        subject = f"key {violation['key']!r}" if violation["key"] else "the register"
        if ordered:
            errors.append(
                f"{subject}: {len(ordered)} of its operations fit in an order that explains "
                "what the clients saw, which ends:"
            )
            errors += [f"  {_show(op, origin)}" for op in ordered[-SHOWN_ORDERED:]]
            errors.append(
                f"after it {subject} holds {violation['state']}, and none of the operations "
                "that could come next fits:"
            )
        else:
            errors.append(
                f"{subject} holds {violation['state']} at first, and none of the operations "
                "that could come first fits:"
            )
        errors += [f"  {_show(op, origin)}" for op in stuck[:SHOWN_STUCK]]
    if not errors:  # the verdict stands even when the story ran out of time
        errors.append(
            "porcupine found no order that explains the history, but named no operations "
            f"within its explain budget ({len(ops)} operations recorded)"
        )
    if shown is not None and answer.get("visualization"):
        errors.append(f"porcupine's picture of it (open in a browser): {shown}")
    elif answer.get("error"):
        errors.append(str(answer["error"]))
    verdict = CheckResult(
        name,
        expected,
        f"not linearizable: {checked}; no order explains "
        f"{len(answer.get('violations', []))} key(s)",
        errors,
    )
    if timeline is not None and stuck_ops:
        begin = min(op.start for op in stuck_ops)
        end = max((op.end or op.start) for op in stuck_ops)
        verdict.during = [str(event) for event in timeline.during(begin, end)]
    return verdict


def _show(op: Operation, origin: float) -> str:
    if op.f in ("put", "append", "cas"):
        call = f"{op.f}({', '.join(repr(v) for v in op.value)})"
    elif op.f == "write":
        call = f"write({op.value!r})"
    else:
        call = f"{op.f}({op.value!r})" if op.value is not None else f"{op.f}()"
    if op.status != "ok":
        outcome = "unknown"
    elif op.f in READS:
        outcome = repr(op.result)
    elif op.f == "cas":
        outcome = "swapped" if op.result else "did not swap"
    else:
        outcome = "ok"
    begin = op.start - origin
    if op.end is None or op.status != "ok":
        why = f": {op.error}" if op.error else ""
        return f"client {op.client}: {call} -> {outcome}{why}   (called {begin:.3f} s, no answer)"
    return (
        f"client {op.client}: {call} -> {outcome}   "
        f"(called {begin:.3f} s, answered {op.end - origin:.3f} s)"
    )
