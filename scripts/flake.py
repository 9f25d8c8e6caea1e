"""`make flake RUNS=20 [LOAD=2] [JOBS=1] [LAB=...]`: run every variant of every lab (starter,
solution, each wrong and also-correct fix) many times, each run with a fresh seed, and count
the verdicts that were not the expected one. A lab is sound only if there are none.

LOAD=N keeps N busy-loop processes running for the whole time (both cores busy on these
machines); JOBS=N runs N lab runs at once, except for the labs that `make test` proves alone
(ALONE): those run one at a time, as they do there, and only such runs count for them. Not part
of `make test` (it is long).

Every run of committed code is recorded in tests/labs/flake-ledger.jsonl (`harness.proof_ledger`),
which is committed. RESUME=1 runs only what the ledger lacks for the code at HEAD, so the whole
table can be filled in over several sittings; `--table` prints it from the ledger, `--prune`
drops the runs that no longer count (old code) before a commit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
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
from harness.proof_ledger import (  # noqa: E402
    DEFAULT_LEDGER,
    Entry,
    Ledger,
    committed_tree,
    entry_for,
    seeds_done,
    table,
)
from harness.variants import Variant, variants  # noqa: E402
from tests.labs.test_labs_prove_themselves import ALONE  # noqa: E402


def _spin() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it kills these
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


def jobs_for(lab: Lab, jobs: int) -> int:
    """Lab runs at once for `lab`: one for a lab that `make test` proves with no other beside
    it (its checks were never meant to hold with three runs at once), else `jobs`."""
    return 1 if lab.slug in ALONE else jobs


def as_run_alone(entries: list[Entry]) -> list[Entry]:
    """The ledger's runs that count: for an ALONE lab only those made one at a time."""
    return [e for e in entries if e.lab not in ALONE or e.jobs == 1]


def run_variant(
    pool: ThreadPoolExecutor, lab: Lab, variant: Variant, seeds: list[int], jobs: int
) -> list[ProofRun]:
    """One run of `variant` per seed: one at a time when `jobs` is 1, else on the pool."""
    if jobs == 1:
        return [check_variant(lab, variant, seed) for seed in seeds]
    return list(pool.map(lambda seed: check_variant(lab, variant, seed), seeds))


def recording(labs: list[Lab], trees: dict[str, str], harness_tree: str | None) -> str:
    """Whether this invocation's runs go to the ledger, in words: only committed code's do."""
    if not harness_tree:
        return "not recorded (harness/ has uncommitted changes)"
    uncommitted = [lab.slug for lab in labs if lab.slug not in trees]
    if uncommitted:
        return f"recorded, but not for {', '.join(uncommitted)} (uncommitted changes)"
    return "recorded"


def parse_args() -> argparse.Namespace:
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
    parser.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER)
    parser.add_argument(
        "--resume", action="store_true", help="skip the runs the ledger has for this code"
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="print the ledger's table for the code at HEAD (LOAD=0 and LOAD=2) and stop",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="drop the ledger's runs of code no longer at HEAD (to commit it) and stop",
    )
    return parser.parse_args()


def prune(ledger: Ledger, labs: list[Lab], trees: dict[str, str], harness_tree: str | None) -> int:
    """Drop the runs of code no longer at HEAD, so that the committed ledger holds evidence only."""
    if not harness_tree or len(trees) < len(labs):
        print("flake --prune: needs harness/ and every lab committed")
        return 2
    kept = ledger.current(trees, harness_tree)
    dropped = len(ledger.entries()) - len(kept)
    ledger.rewrite(kept)
    print(f"flake --prune: kept {len(kept)} runs, dropped {dropped} of code no longer at HEAD")
    return 0


def main() -> int:
    args = parse_args()
    labs = [find_lab(name) for name in args.lab] if args.lab else catalogue()
    ledger = Ledger(args.ledger)
    harness_tree = committed_tree(ROOT / "harness")
    trees = {lab.slug: tree for lab in labs if (tree := committed_tree(lab.root))}
    valid = as_run_alone(ledger.current(trees, harness_tree)) if harness_tree else []
    if args.prune:
        if args.lab:
            print("flake --prune: prunes the whole ledger; drop --lab")
            return 2
        return prune(ledger, labs, trees, harness_tree)
    if args.table:
        names = [(lab.slug, [v.label for v in variants(lab)]) for lab in labs]
        print(table(valid, names, sorted({0, 2, args.load})))
        return 0
    todo: list[tuple[Lab, Variant, list[int]]] = []
    for lab in labs:
        for variant in variants(lab):
            if args.only not in variant.label:
                continue
            done = seeds_done(valid, lab.slug, variant.label, args.load) if args.resume else set()
            fresh = (seed for seed in range(args.first_seed, 1 << 30) if seed not in done)
            count = max(0, args.runs - len(done))
            seeds = [next(fresh) for _ in range(count)]
            if seeds:
                todo.append((lab, variant, seeds))
    recorded = recording(labs, trees, harness_tree)
    print(
        f"chaoslab flake: {len(todo)} variants, {sum(len(s) for *_, s in todo)} runs, "
        f"load {args.load}, jobs {args.jobs} (1 for {', '.join(sorted(ALONE))}); "
        f"{os.cpu_count()} cores; {recorded}",
        flush=True,
    )
    bad = 0
    total = 0
    started = time.monotonic()
    with busy_cores(args.load), ThreadPoolExecutor(args.jobs) as pool:
        for lab, variant, seeds in todo:
            jobs = jobs_for(lab, args.jobs)
            results = run_variant(pool, lab, variant, seeds, jobs)
            total += len(results)
            lab_tree = trees.get(lab.slug)
            if harness_tree and lab_tree:
                for run in results:
                    ledger.append(entry_for(run, lab.slug, args.load, jobs, lab_tree, harness_tree))
            good = sum(run.as_expected for run in results)
            times = [run.seconds for run in results]
            print(
                f"{lab.slug:18} {variant.label:40} {good:>2}/{len(seeds)} as expected; wall "
                f"min {min(times):.1f} s, median {statistics.median(times):.1f} s, "
                f"max {max(times):.1f} s; load {load_average()}",
                flush=True,
            )
            for run in results:
                if not run.as_expected:
                    bad += 1
                    print(f"    unexpected: {run.why()}", flush=True)
                    print(f"      its output: {keep(args.keep, lab, run)}", flush=True)
    print(
        f"{total - bad} of {total} runs as expected ({bad} unexpected) in "
        f"{time.monotonic() - started:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the variants finished so far are in the ledger already
        print("\nchaoslab flake: interrupted; the variants finished so far are recorded")
        sys.exit(130)
