"""`make flake RUNS=20`: run every lab's starter and solution many times in a row, each with a
fresh seed, and count verdicts. A lab is sound only if the solution passes every run and the
starter fails exactly its `starter_fails` every run. Not part of `make test` (it is long)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Lab, catalogue, find_lab  # noqa: E402


def one_run(lab: Lab, solution: bool, seed: int) -> tuple[bool, float, str]:
    with tempfile.TemporaryDirectory(prefix="chaoslab-flake-") as tmp:
        out = Path(tmp) / "verdict.json"
        args = [
            sys.executable,
            "-m",
            "harness.cli",
            "check",
            lab.slug,
            "--json-only",
            "--json",
            str(out),
            "--seed",
            str(seed),
        ]
        if solution:
            args.append("--solution")
        start = time.monotonic()
        subprocess.run(args, capture_output=True, check=False)
        took = time.monotonic() - start
        if not out.exists():
            return False, took, "no verdict"
        verdict = json.loads(out.read_text())
    failed = {c["name"] for c in verdict["checks"] if c["outcome"] != "passed"}
    expected = set() if solution else set(lab.starter_fails)
    if verdict["setup_error"]:
        return False, took, verdict["setup_error"].splitlines()[0]
    if failed != expected:
        return False, took, f"seed {seed}: failed {sorted(failed)}, expected {sorted(expected)}"
    return True, took, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lab", action="append", help="only these labs (repeatable)")
    parser.add_argument("--first-seed", type=int, default=1000)
    args = parser.parse_args()
    labs = [find_lab(name) for name in args.lab] if args.lab else catalogue()
    bad = 0
    for lab in labs:
        for solution in (True, False):
            which = "solution" if solution else "starter"
            results = [one_run(lab, solution, args.first_seed + i) for i in range(args.runs)]
            good = sum(ok for ok, _, _ in results)
            times = sorted(t for _, t, _ in results)
            print(
                f"{lab.slug:20} {which:8} {good}/{args.runs} as expected; wall "
                f"min {times[0]:.1f} s, median {times[len(times) // 2]:.1f} s, "
                f"max {times[-1]:.1f} s",
                flush=True,
            )
            for ok, _, why in results:
                if not ok:
                    bad += 1
                    print(f"    unexpected: {why}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
