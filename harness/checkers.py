"""Checkers judge what was recorded. Each returns a CheckResult with concrete errors
("charge c-17 applied 2 times; expected 1"), never a bare bool, so the verdict can tell the
learner what was expected, what was observed, and during which fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.faults import FaultEvent, Timeline
from harness.history import Operation, percentile

MAX_SHOWN = 8


@dataclass
class CheckResult:
    """The verdict of one checker."""

    name: str
    expected: str
    observed: str
    errors: list[str] = field(default_factory=list)
    during: list[str] = field(default_factory=list)
    # When the operations this result judged ran (monotonic seconds, first start to last end):
    # `expect` then names only the faults that overlapped them. `judging(ops)` sets it.
    window: tuple[float, float] | None = None

    def judging(self, ops: Iterable[Operation]) -> CheckResult:
        """This result, judged on `ops`: its "during" names only faults that overlapped them."""
        spans = [(op.start, op.end if op.end is not None else op.start) for op in ops]
        if spans:
            self.window = (min(s for s, _ in spans), max(e for _, e in spans))
        return self

    @property
    def valid(self) -> bool:
        return not self.errors

    def explain(self) -> str:
        lines = [self.name, f"  expected: {self.expected}", f"  observed: {self.observed}"]
        shown = self.errors[:MAX_SHOWN]
        lines += [f"    - {error}" for error in shown]
        if len(self.errors) > MAX_SHOWN:
            lines.append(f"    ... and {len(self.errors) - MAX_SHOWN} more")
        if self.during:
            lines.append(f"  during: {'; '.join(self.during)}")
        return "\n".join(lines)


class CheckFailed(AssertionError):
    """Raised by `expect`; the plugin and the CLI print its text as the verdict."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        super().__init__(result.explain())


# The results a check passed in this process, for its verdict: a learner sees the margin
# ("peak 41 requests/s; expected at most 60"), not a bare PASS. The plugin takes them per check.
_passed: list[CheckResult] = []


def expect(result: CheckResult, during: Timeline | Iterable[FaultEvent] | None = None) -> None:
    """Fail the check with the result's story unless it is valid."""
    if during is not None:
        events = during.events if isinstance(during, Timeline) else list(during)
        if result.window is not None:
            events = [e for e in events if e.overlaps(*result.window)]
        result.during = [str(e) for e in events]
    if not result.valid:
        raise CheckFailed(result)
    _passed.append(result)


def take_passed() -> list[CheckResult]:
    """The results passed since the last call (the plugin calls it around each check)."""
    taken = list(_passed)
    _passed.clear()
    return taken


def exactly_once(
    applied: Iterable[str],
    expected: Iterable[str],
    *,
    what: str = "operation",
    allow_missing: Iterable[str] = (),
) -> CheckResult:
    """Every key in `expected` was applied exactly once; none applied that was not expected.

    `applied` has one item per effect seen (a key twice = applied twice). Keys in
    `allow_missing` (operations whose outcome the client never learned) may be absent.
    """
    counts = Counter(applied)
    wanted = list(dict.fromkeys(expected))
    maybe = set(allow_missing)
    errors = []
    for key in wanted:
        n = counts.get(key, 0)
        if n > 1:
            errors.append(f"{what} {key} applied {n} times; expected 1")
        elif n == 0 and key not in maybe:
            errors.append(f"{what} {key} applied 0 times; expected 1 (it was acknowledged)")
    for key in maybe - set(wanted):
        if counts.get(key, 0) > 1:
            errors.append(f"{what} {key} applied {counts[key]} times; expected at most 1")
    stray = [k for k in counts if k not in set(wanted) and k not in maybe]
    errors += [f"{what} {k} applied {counts[k]} times; expected 0 (never requested)" for k in stray]
    duplicated = sum(1 for k in wanted if counts.get(k, 0) > 1)
    observed = (
        f"{duplicated} of {len(wanted)} {what}s applied more than once"
        if duplicated
        else f"{len(errors)} problem(s) in {len(wanted)} {what}s"
    )
    return CheckResult(
        f"every {what} applied exactly once",
        f"each of the {len(wanted)} {what}s applied once",
        observed if errors else f"all {len(wanted)} {what}s applied once",
        errors,
    )


def no_lost_writes(
    acknowledged: Iterable[str], present: Iterable[str], *, what: str = "write"
) -> CheckResult:
    """Every acknowledged write is present afterwards."""
    have = set(present)
    acked = list(dict.fromkeys(acknowledged))
    lost = [k for k in acked if k not in have]
    return CheckResult(
        f"no acknowledged {what} lost",
        f"all {len(acked)} acknowledged {what}s present",
        f"{len(lost)} of {len(acked)} acknowledged {what}s missing" if lost else "none lost",
        [f"{what} {k} was acknowledged but is missing" for k in lost],
    )


def agree(
    answers: Mapping[str, object],
    truth: Mapping[str, object],
    *,
    what: str = "answer",
    truth_name: str = "the record",
) -> CheckResult:
    """Every answer a client got matches what `truth` holds for the same key."""
    errors = []
    for key, answer in answers.items():
        if key not in truth:
            errors.append(f"{what} for {key} was {answer!r}; {truth_name} has nothing for it")
        elif truth[key] != answer:
            errors.append(f"{what} for {key} was {answer!r}; {truth_name} has {truth[key]!r}")
    return CheckResult(
        f"every {what} agrees with {truth_name}",
        f"all {len(answers)} {what}s match {truth_name}",
        f"{len(errors)} of {len(answers)} disagree" if errors else "all agree",
        errors,
    )


def latency_below(
    ops: Sequence[Operation],
    bound: float,
    *,
    q: float = 100.0,
    what: str = "answer",
) -> CheckResult:
    """The q-th percentile latency of the completed `ops` is below `bound` seconds."""
    done = [op for op in ops if op.latency is not None]
    latencies = [op.latency for op in done if op.latency is not None]
    observed_value = percentile(latencies, q)
    label = "max" if q >= 100 else f"p{q:g}"
    slow = sorted((op for op in done if (op.latency or 0) > bound), key=lambda o: -(o.latency or 0))
    errors = []
    if not done:
        errors.append(f"no {what} completed; expected at least one")
    elif observed_value > bound:
        errors = [
            f"{op.f} took {op.latency * 1000:.0f} ms ({op.status}); bound {bound * 1000:.0f} ms"
            for op in slow
            if op.latency is not None
        ]
    return CheckResult(
        f"{what}s are fast",
        f"{label} latency of {what}s under {bound * 1000:.0f} ms",
        f"{label} {observed_value * 1000:.0f} ms over {len(done)} {what}s"
        + (f", {len(slow)} over the bound" if slow else ""),
        errors,
    ).judging(ops)


def at_most(count: int, bound: int, *, what: str, detail: Sequence[str] = ()) -> CheckResult:
    """A count stays within a bound (calls while a breaker is open, attempts per call...)."""
    errors = [] if count <= bound else [f"{what}: {count}; expected at most {bound}", *detail]
    return CheckResult(
        f"{what} at most {bound}",
        f"at most {bound}",
        f"{count}",
        errors,
    )
