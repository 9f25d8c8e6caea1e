"""A Jepsen-style history: every operation a client invoked, how it ended, and when.

An operation ends `ok` (it happened, and the client knows), `fail` (it did not happen), or
`unknown` (the client cannot tell: a timeout, a reset). Checkers must treat `unknown` as "may
have happened".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from harness import recording

Status = Literal["invoke", "ok", "fail", "unknown"]


@dataclass
class Operation:
    """One operation: `invoke` until it ends; times are monotonic seconds."""

    id: int
    client: int
    f: str
    value: Any
    start: float
    status: Status = "invoke"
    end: float | None = None
    result: Any = None
    error: str | None = None

    @property
    def latency(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def describe(self) -> str:
        took = f" after {self.latency * 1000:.0f} ms" if self.latency is not None else ""
        detail = f": {self.error}" if self.error else ""
        return f"{self.f} {self.value!r} by client {self.client} -> {self.status}{took}{detail}"


@dataclass
class History:
    """Operations in invocation order; safe to append to from many client threads."""

    ops: list[Operation] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        recording.track_history(self)

    def invoke(self, client: int, f: str, value: Any = None) -> Operation:
        with self._lock:
            op = Operation(len(self.ops) + 1, client, f, value, self.clock())
            self.ops.append(op)
        return op

    def complete(
        self, op: Operation, status: Status, result: Any = None, error: str | None = None
    ) -> Operation:
        op.end = self.clock()
        op.result = result
        op.error = error
        op.status = status
        return op

    def __iter__(self) -> Iterator[Operation]:
        with self._lock:
            return iter(list(self.ops))

    def __len__(self) -> int:
        return len(self.ops)

    def where(
        self,
        f: str | None = None,
        status: Status | None = None,
        started_after: float | None = None,
        started_before: float | None = None,
    ) -> list[Operation]:
        """The operations matching every given filter."""
        return [
            op
            for op in self
            if (f is None or op.f == f)
            and (status is None or op.status == status)
            and (started_after is None or op.start >= started_after)
            and (started_before is None or op.start <= started_before)
        ]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self:
            out[op.status] = out.get(op.status, 0) + 1
        return out


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
