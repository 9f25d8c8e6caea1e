"""`make flake RUNS=20 [LOAD=2] [JOBS=1] [LAB=...]`: run every variant of every lab (starter,
solution, each wrong and also-correct fix) many times, each run with a fresh seed, and count
the verdicts that were not the expected one. A lab is sound only if there are none.

LOAD=N keeps N busy-loop processes running for the whole time (both cores busy on these
machines); JOBS=N runs N lab runs at once. Not part of `make test` (it is long).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Lab, catalogue, find_lab  # noqa: E402
from harness.proof import ProofRun, check_variant  # noqa: E402
from harness.variants import Variant, variants  # noqa: E402


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """`count` processes that burn CPU until the block ends (killed, whatever happens)."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.join()


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def keep(folder: Path, lab: Lab, run: ProofRun) -> Path:
    """Keep an unexpected run's whole output: the verdict alone does not say why."""
    name = f"{lab.slug}-{run.variant.label.replace('/', '-')}-seed{run.seed}.txt"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run.output + ("\n" + run.setup_error if run.setup_error else ""))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lab", action="append", help="only these labs (repeatable)")
    parser.add_argument("--only", default="", help="only variants whose label contains this")
    parser.add_argument("--load", type=int, default=0, help="busy-loop processes meanwhile")
    parser.add_argument("--jobs", type=int, default=1, help="lab runs at once")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument(
        "--keep",
        type=Path,
        default=Path("build/flake"),
        help="where the output of each unexpected run is kept",
    )
    args = parser.parse_args()
    labs = [find_lab(name) for name in args.lab] if args.lab else catalogue()
    todo: list[tuple[Lab, Variant]] = [
        (lab, variant) for lab in labs for variant in variants(lab) if args.only in variant.label
    ]
    print(
        f"chaoslab flake: {len(todo)} variants x {args.runs} runs, load {args.load}, "
        f"jobs {args.jobs}; {os.cpu_count()} cores",
        flush=True,
    )
    bad = 0
    started = time.monotonic()
    with busy_cores(args.load), ThreadPoolExecutor(args.jobs) as pool:
        for lab, variant in todo:
            seeds = [args.first_seed + i for i in range(args.runs)]
            results: list[ProofRun] = list(
                pool.map(lambda seed, on=lab, of=variant: check_variant(on, of, seed), seeds)
            )
            good = sum(run.as_expected for run in results)
            times = [run.seconds for run in results]
            print(
                f"{lab.slug:18} {variant.label:40} {good:>2}/{args.runs} as expected; wall "
                f"min {min(times):.1f} s, median {statistics.median(times):.1f} s, "
                f"max {max(times):.1f} s; load {load_average()}",
                flush=True,
            )
            for run in results:
                if not run.as_expected:
                    bad += 1
                    print(f"    unexpected: {run.why()}", flush=True)
                    print(f"      its output: {keep(args.keep, lab, run)}", flush=True)
    total = len(todo) * args.runs
    print(
        f"{total - bad} of {total} runs as expected ({bad} unexpected) in "
        f"{time.monotonic() - started:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
