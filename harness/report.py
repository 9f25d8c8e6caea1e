"""The learner's verdict in the terminal, and a JSON score for CI grading."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from harness.files import write_atomically
from harness.lab import Lab

_CHECK_NUMBER = re.compile(r"^test_(\d+)_(.*)$")


@dataclass
class CheckOutcome:
    """One check's verdict: its test name, outcome, and the story when it failed."""

    name: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""
    duration: float = 0.0

    @property
    def title(self) -> str:
        """`test_2_answers_agree_with_ledger` reads as `2. answers agree with ledger`."""
        base = self.name.split("[", 1)[0].rsplit("::", 1)[-1]
        match = _CHECK_NUMBER.match(base)
        if match:
            return f"{match.group(1)}. {match.group(2).replace('_', ' ')}"
        return base.removeprefix("test_").replace("_", " ")


@dataclass
class Verdict:
    lab: str
    solution: bool
    seed: int
    checks: list[CheckOutcome] = field(default_factory=list)
    setup_error: str = ""
    variant: str = ""  # the wrong or also-correct fix checked in place of the learner's code

    @property
    def passed(self) -> int:
        return sum(1 for c in self.checks if c.outcome == "passed")

    @property
    def ok(self) -> bool:
        return (
            not self.setup_error
            and bool(self.checks)
            and all(c.outcome in ("passed", "skipped") for c in self.checks)
        )

    def failed_names(self) -> list[str]:
        return [c.name for c in self.checks if c.outcome in ("failed", "error")]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["passed"] = self.passed
        data["total"] = len(self.checks)
        data["score"] = self.passed / len(self.checks) if self.checks else 0.0
        data["ok"] = self.ok
        return data

    def write_json(self, path: Path) -> None:
        """Write the verdict whole or not at all: a grader never reads half a file."""
        write_atomically(path, json.dumps(self.to_json(), indent=2) + "\n")


def render(verdict: Verdict, lab: Lab, color: bool = False, name: str | None = None) -> str:
    """What the learner reads after `chaoslab check`. `name`: how the learner named the lab
    (a folder, for a copy outside the catalogue), for the commands the footer suggests."""
    name = name or lab.slug
    green, red, dim, reset = ("\033[32m", "\033[31m", "\033[2m", "\033[0m") if color else ("",) * 4
    which = verdict.variant or ("reference solution" if verdict.solution else "your code")
    lines = [f"{lab.title}  ({lab.slug}, chapter {lab.chapter}; {which})", ""]
    if verdict.setup_error:
        lines += [f"{red}The lab could not run:{reset}", verdict.setup_error]
        return "\n".join(lines)
    for check in verdict.checks:
        took = f"{dim}({check.duration:.1f} s){reset}"
        if check.outcome == "passed":
            lines.append(f"  {green}PASS{reset} {check.title} {took}")
            lines += [f"       {dim}{line}{reset}" for line in check.message.strip().splitlines()]
        elif check.outcome == "skipped":
            lines.append(f"  SKIP {check.title}")
        else:
            lines.append(f"  {red}FAIL{reset} {check.title} {took}")
            lines += [f"       {line}" for line in check.message.strip().splitlines()]
    lines.append("")
    total = len(verdict.checks)
    if verdict.ok:
        lines.append(f"{green}All {total} checks pass.{reset} Seed {verdict.seed}.")
    else:
        lines.append(
            f"{red}{verdict.passed} of {total} checks pass.{reset} Seed {verdict.seed} "
            f"(replay with --seed {verdict.seed})."
        )
        if not verdict.solution and not verdict.variant:
            lines.append(
                f"Stuck? 'chaoslab hint {name}' gives a hint; the logs of this run "
                "are listed by 'chaoslab logs " + name + "'."
            )
    return "\n".join(lines)


class ProgressLine:
    """One line on a terminal, rewritten in place while the checks run: which check, and how
    long the run has taken. Erased before the verdict is printed."""

    def __init__(self, out: TextIO, tick: float = 0.5) -> None:
        self.out = out
        self.tick = tick
        self.started = time.monotonic()
        self.current = "starting the lab's services"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProgressLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.out.write("\r\033[K")
        self.out.flush()

    def check(self, name: str) -> None:
        self.current = CheckOutcome(name, "").title
        self._draw()

    def _draw(self) -> None:
        took = time.monotonic() - self.started
        self.out.write(f"\r\033[K  ... {self.current} ({took:.1f} s)")
        self.out.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self._draw()
