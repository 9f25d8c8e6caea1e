"""A lab proves itself: run one variant of its learner code through `chaoslab check`, in a
child process as a learner or CI would, and compare the verdict with what the variant expects.

Used by the lab-proof tests (`make test`) and by `make flake` (many runs, optionally with the
CPU busy), so that both judge a run the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.environment import LOGS_ENV
from harness.lab import Lab
from harness.variants import Variant

NO_VERDICT_TIMEOUT = 240.0  # seconds: far beyond any lab's run, even on a loaded machine
LOG_TAIL_LINES = 30  # per service, in an unexpected run's output


@dataclass(frozen=True)
class ProofRun:
    """One run of one variant: what failed, against what was expected."""

    variant: Variant
    seed: int
    exit_code: int | None
    failed: frozenset[str]
    setup_error: str
    seconds: float
    output: str

    @property
    def as_expected(self) -> bool:
        if self.setup_error or self.exit_code is None:
            return False
        expected_code = 1 if self.variant.expected_failures else 0
        return self.failed == self.variant.expected_failures and self.exit_code == expected_code

    def why(self) -> str:
        """What was unexpected, in one line."""
        if self.exit_code is None:
            return f"seed {self.seed}: no verdict within {NO_VERDICT_TIMEOUT:.0f} s"
        if self.setup_error:
            first = self.setup_error.strip().splitlines()[0] if self.setup_error.strip() else ""
            return f"seed {self.seed}: could not run (exit {self.exit_code}): {first}"
        expected = self.variant.expected_failures
        parts = []
        if self.failed - expected:
            parts.append(f"also failed {sorted(self.failed - expected)}")
        if expected - self.failed:
            parts.append(f"passed {sorted(expected - self.failed)}, which must fail")
        if not parts:
            parts.append(f"exit {self.exit_code}")
        return f"seed {self.seed}: " + "; ".join(parts)


def check_variant(
    lab: Lab, variant: Variant, seed: int, backend: str = "process", python: str = sys.executable
) -> ProofRun:
    """Run the lab's checks on `variant` once with `seed` and read the JSON verdict. The run
    keeps its logs apart from any other (proofs run many at once); an unexpected run's output
    ends with the tail of each service's log, since CI keeps nothing else of it."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-proof-") as tmp:
        run = _check(lab, variant, seed, backend, python, Path(tmp))
        if run.as_expected:
            return run
        return dataclasses.replace(run, output=run.output + _log_tails(Path(tmp) / lab.slug))


def _check(lab: Lab, variant: Variant, seed: int, backend: str, python: str, tmp: Path) -> ProofRun:
    """One run, its logs kept in `tmp`."""
    out = tmp / "verdict.json"
    args = [python, "-m", "harness.cli", "check", str(lab.root), "--json-only"]
    args += ["--json", str(out), "--seed", str(seed), "--backend", backend]
    if variant.kind == "solution":
        args.append("--solution")
    elif variant.path is not None and variant.kind != "starter":
        args += ["--variant", str(variant.path)]
    start = time.monotonic()
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=NO_VERDICT_TIMEOUT,
            check=False,
            env={**os.environ, LOGS_ENV: str(tmp)},
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else ""
        return ProofRun(variant, seed, None, frozenset(), "", NO_VERDICT_TIMEOUT, output)
    took = time.monotonic() - start
    output = done.stdout + done.stderr
    if not out.exists():
        return ProofRun(
            variant, seed, done.returncode, frozenset(), output or "no verdict", took, output
        )
    verdict = json.loads(out.read_text())
    failed = frozenset(c["name"] for c in verdict["checks"] if c["outcome"] != "passed")
    return ProofRun(
        variant, seed, done.returncode, failed, verdict["setup_error"], took, _story(verdict)
    )


def _story(verdict: dict[str, object]) -> str:
    """The failed checks' messages, for a proof test's failure."""
    lines = []
    checks = verdict.get("checks")
    for check in checks if isinstance(checks, list) else []:
        if check.get("outcome") != "passed":
            lines.append(f"{check.get('name')}: {check.get('message', '')}")
    return "\n".join(lines)


def _log_tails(folder: Path) -> str:
    """The last lines of each service's log of a run, to tell why it went wrong."""
    logs = sorted(folder.glob("*.log")) if folder.is_dir() else []
    parts = []
    for log in logs:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        parts.append(f"--- {log.name}, last {min(len(lines), LOG_TAIL_LINES)} lines ---")
        parts += lines[-LOG_TAIL_LINES:]
    return "\n" + "\n".join(parts) if parts else ""
