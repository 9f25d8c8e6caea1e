"""A seeded fault schedule (a nemesis, in Jepsen's words): faults over time, run by a check in
the foreground while traffic flows in the background.

    menu = {"crash consumer": lambda f: f.crash("consumer"),
            "slow acks": lambda f: f.http("broker", delay_ms=1500, path="/ack")}
    schedule = Schedule.random(seed, menu, total=8.0)
    schedule.run(faults)

The same seed gives the same schedule, so `--seed` replays a failure; `str(schedule)` is the
plan, printed with the failure. Schedules compose: `a + b` runs `a`, then `b`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from harness.faults import Faults

FaultMaker = Callable[[Faults], AbstractContextManager[object]]


@dataclass(frozen=True)
class Step:
    """Hold fault `name` from `at` seconds after the start, for `hold` seconds."""

    at: float
    hold: float
    name: str
    make: FaultMaker

    def __str__(self) -> str:
        return f"t={self.at:.2f} s: {self.name} for {self.hold:.2f} s"


@dataclass(frozen=True)
class Schedule:
    """Steps in time order; they do not overlap (a step may itself be several faults)."""

    steps: tuple[Step, ...]
    seed: int | None = None

    @classmethod
    def random(
        cls,
        seed: int,
        menu: Mapping[str, FaultMaker],
        *,
        total: float,
        hold: tuple[float, float] = (0.3, 1.0),
        gap: tuple[float, float] = (0.2, 0.6),
        start: float = 0.0,
    ) -> Schedule:
        """Faults drawn from `menu` with random holds and gaps, filling `total` seconds."""
        if not menu:
            raise ValueError("a random schedule needs at least one fault in its menu")
        rng = random.Random(f"nemesis:{seed}")
        names = sorted(menu)
        steps = []
        at = start + rng.uniform(*gap)
        while True:
            length = rng.uniform(*hold)
            if at + length > total:
                break
            name = rng.choice(names)
            steps.append(Step(round(at, 3), round(length, 3), name, menu[name]))
            at += length + rng.uniform(*gap)
        return cls(tuple(steps), seed)

    @classmethod
    def of(cls, *steps: tuple[float, float, str, FaultMaker]) -> Schedule:
        """A fixed schedule from (at, hold, name, make) tuples."""
        return cls(tuple(sorted((Step(*s) for s in steps), key=lambda s: s.at)))

    @property
    def duration(self) -> float:
        return max((s.at + s.hold for s in self.steps), default=0.0)

    def __add__(self, other: Schedule) -> Schedule:
        shift = self.duration
        moved = tuple(Step(s.at + shift, s.hold, s.name, s.make) for s in other.steps)
        return Schedule(self.steps + moved, self.seed if self.seed is not None else other.seed)

    def __str__(self) -> str:
        head = f"fault schedule (seed {self.seed})" if self.seed is not None else "fault schedule"
        return "\n".join([f"{head}:", *(f"  {s}" for s in self.steps)])

    def names(self) -> Sequence[str]:
        return [s.name for s in self.steps]

    def run(
        self,
        faults: Faults,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Run every step on time; each fault healed when its hold ends, or if anything raises."""
        begin = clock()
        for step in self.steps:
            wait = begin + step.at - clock()
            if wait > 0:
                sleep(wait)
            with step.make(faults):
                sleep(step.hold)
