"""A record of `make flake` runs that outlives one invocation, so that a table too long for one
sitting (every variant of every lab, 10 runs under load and 20 without) can be filled in over
several, and still be trusted.

Each run is one JSON line, stamped with the git tree of its lab and of `harness/`. A run counts
towards the table only while both trees are still the ones at HEAD: change a lab (or the
harness) and its earlier runs no longer say anything about it. Runs made from a tree with
uncommitted changes are not recorded at all.

The ledger is committed (tests/labs/flake-ledger.jsonl): a sitting's machine does not outlive
it, and the table is evidence the next one builds on. `make flake-prune` drops the runs that no
longer count before it is committed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.proof import ProofRun

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LEDGER = ROOT / "tests" / "labs" / "flake-ledger.jsonl"


@dataclass(frozen=True)
class Entry:
    """One run of one variant, as recorded."""

    lab: str
    variant: str
    seed: int
    load: int
    jobs: int
    as_expected: bool
    why: str  # empty when as expected
    seconds: float
    lab_tree: str
    harness_tree: str
    at: str  # UTC, ISO 8601


def committed_tree(path: Path, root: Path = ROOT) -> str | None:
    """The git tree (or blob) of `path` at HEAD, or None if the work tree differs from it there
    (or this is not a git checkout): a run of uncommitted code is not one a table can cite."""
    rel = str(path.resolve().relative_to(root.resolve()))
    try:
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", rel],
            capture_output=True,
            text=True,
            check=True,
        )
        if status.stdout.strip():
            return None
        tree = subprocess.run(
            ["git", "-C", str(root), "rev-parse", f"HEAD:{rel}"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return tree.stdout.strip() or None


def entry_for(
    run: ProofRun, lab: str, load: int, jobs: int, lab_tree: str, harness_tree: str
) -> Entry:
    return Entry(
        lab=lab,
        variant=run.variant.label,
        seed=run.seed,
        load=load,
        jobs=jobs,
        as_expected=run.as_expected,
        why="" if run.as_expected else run.why(),
        seconds=round(run.seconds, 2),
        lab_tree=lab_tree,
        harness_tree=harness_tree,
        at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


class Ledger:
    """Append-only JSON lines; a line it cannot read (a run cut short mid-write) is skipped."""

    def __init__(self, path: Path = DEFAULT_LEDGER) -> None:
        self.path = path

    def append(self, entry: Entry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(entry)) + "\n")

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(Entry(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return found

    def rewrite(self, entries: list[Entry]) -> None:
        """Keep only `entries` (whole lines, written to a new file and moved into place)."""
        fresh = self.path.with_suffix(".tmp")
        fresh.write_text("".join(json.dumps(asdict(e)) + "\n" for e in entries), encoding="utf-8")
        fresh.replace(self.path)

    def current(self, trees: dict[str, str], harness_tree: str) -> list[Entry]:
        """The runs still valid: their lab's tree and the harness's are those given."""
        return [
            e
            for e in self.entries()
            if e.harness_tree == harness_tree and trees.get(e.lab) == e.lab_tree
        ]


def seeds_done(entries: list[Entry], lab: str, variant: str, load: int) -> set[int]:
    return {e.seed for e in entries if e.lab == lab and e.variant == variant and e.load == load}


def table(entries: list[Entry], labs: list[tuple[str, list[str]]], loads: list[int]) -> str:
    """A Markdown table, one row per lab: runs as expected of runs made, per load, with every
    unexpected run named; and the variants that have fewer runs than the others."""
    by: dict[tuple[str, int], list[Entry]] = defaultdict(list)
    for e in entries:
        by[(e.lab, e.load)].append(e)
    head = "| lab | variants | " + " | ".join(f"LOAD={n}" for n in loads) + " |"
    lines = [head, "|---|---|" + "---|" * len(loads)]
    unexpected: list[str] = []
    totals = {n: [0, 0] for n in loads}
    for lab, names in labs:
        cells = []
        for n in loads:
            runs = [e for e in by[(lab, n)] if e.variant in names]
            good = sum(e.as_expected for e in runs)
            totals[n][0] += good
            totals[n][1] += len(runs)
            per: dict[str, int] = defaultdict(int)
            for e in runs:
                per[e.variant] += 1
            fewest = min((per[name] for name in names), default=0)
            cells.append(f"{good} of {len(runs)} (each variant ≥ {fewest})" if runs else "-")
            unexpected += [
                f"- {lab} `{e.variant}` LOAD={n}: {e.why}" for e in runs if not e.as_expected
            ]
        lines.append(f"| {lab} | {len(names)} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | "
        + str(sum(len(names) for _, names in labs))
        + " | "
        + " | ".join(f"**{g} of {t}**" for g, t in (totals[n] for n in loads))
        + " |"
    )
    if unexpected:
        lines += ["", "Unexpected runs:", *unexpected]
    return "\n".join(lines)
