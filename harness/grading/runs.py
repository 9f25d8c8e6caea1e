"""Run a lab's checks N times, each in a child `chaoslab check` with a fresh seed, and tally
each check's passes: a check that passes 19 runs in 20 shows up before students meet it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.lab import PROJECT_ROOT

RUN_TIMEOUT = 300.0  # seconds: far beyond any lab's run, even on a loaded machine


@dataclass
class CheckTally:
    """One check over the runs: how often it passed, and the story of its last failure."""

    name: str
    runs: int = 0
    passes: int = 0
    message: str = ""
    seconds: float = 0.0  # the longest of its runs

    @property
    def rate(self) -> float:
        return self.passes / self.runs if self.runs else 0.0


@dataclass
class Tally:
    """A lab's checks over N runs, and the runs that gave no verdict (exit 2)."""

    checks: dict[str, CheckTally] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.seeds)


def run_once(lab_root: Path, seed: int, backend: str, solution: bool = False) -> dict[str, object]:
    """One `chaoslab check` of the lab folder in a child process; returns its JSON verdict."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-grade-") as tmp:
        out = Path(tmp) / "verdict.json"
        args = [
            sys.executable,
            "-m",
            "harness.cli",
            "check",
            str(lab_root.resolve()),
            "--json-only",
        ]
        args += ["--json", str(out), "--seed", str(seed), "--backend", backend]
        if solution:
            args.append("--solution")
        # From the folder that holds this harness: `python -m` imports from the working folder
        # first, and a submission's own harness/ must never be the one that judges it.
        child = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT
        )
        try:
            said, _ = child.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)  # the child tears its lab down on SIGTERM
            said, _ = child.communicate()
            return {"setup_error": f"no verdict within {RUN_TIMEOUT:.0f} s", "checks": []}
        except BaseException:
            child.send_signal(signal.SIGTERM)
            child.communicate()
            raise
        if not out.exists():
            return {"setup_error": said.strip() or f"exit {child.returncode}", "checks": []}
        verdict: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))
        return verdict


def repeat(
    lab_root: Path,
    seeds: list[int],
    backend: str,
    solution: bool = False,
    progress: Callable[[int, dict[str, object]], None] | None = None,
) -> Tally:
    """Run the lab once per seed and tally every check's outcomes."""
    tally = Tally()
    for i, seed in enumerate(seeds):
        verdict = run_once(lab_root, seed, backend, solution)
        tally.seeds.append(seed)
        if progress is not None:
            progress(i, verdict)
        error = str(verdict.get("setup_error") or "")
        if error:
            tally.errors.append(f"seed {seed}: {error}")
            continue
        checks = verdict.get("checks")
        for check in checks if isinstance(checks, list) else []:
            name = str(check.get("name", ""))
            entry = tally.checks.setdefault(name, CheckTally(name))
            entry.runs += 1
            entry.seconds = max(entry.seconds, float(check.get("duration") or 0.0))
            if check.get("outcome") in ("passed", "skipped"):
                entry.passes += 1
            else:
                entry.message = str(check.get("message") or check.get("outcome"))
    return tally
