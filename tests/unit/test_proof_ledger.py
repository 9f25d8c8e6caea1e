"""harness.proof_ledger: `make flake` runs recorded so that a long table can be filled in over
several sittings, and counted only while the code they ran is still the code at HEAD."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.proof import ProofRun
from harness.proof_ledger import Entry, Ledger, committed_tree, entry_for, seeds_done, table
from harness.variants import Variant


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "labs" / "a").mkdir(parents=True)
    (tmp_path / "labs" / "a" / "lab.toml").write_text("x = 1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_a_clean_folder_has_its_tree_and_a_changed_one_has_none(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    lab = root / "labs" / "a"
    first = committed_tree(lab, root)
    assert first is not None
    assert len(first) == 40
    (lab / "lab.toml").write_text("x = 2\n")
    assert committed_tree(lab, root) is None  # modified, not committed
    _git(root, "commit", "-q", "-am", "two")
    second = committed_tree(lab, root)
    assert second is not None
    assert second != first
    (lab / "new.py").write_text("")
    assert committed_tree(lab, root) is None  # untracked file


def test_no_git_checkout_means_no_tree(tmp_path: Path) -> None:
    (tmp_path / "labs").mkdir()
    assert committed_tree(tmp_path / "labs", tmp_path) is None


def _entry(lab: str, variant: str, seed: int, *, load: int = 2, ok: bool = True) -> Entry:
    return Entry(lab, variant, seed, load, 3, ok, "" if ok else "seed x: also failed", 5.0,
                 f"tree-{lab}", "h1", "2026-11-30T00:00:00Z")  # fmt: skip


def test_only_runs_of_the_code_at_head_count_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(_entry("a", "solution", 1000))
    ledger.append(_entry("b", "solution", 1000))
    with ledger.path.open("a") as out:
        out.write('{"lab": "a", "vari')  # a run killed mid-write
    assert len(ledger.entries()) == 2
    assert [e.lab for e in ledger.current({"a": "tree-a", "b": "changed"}, "h1")] == ["a"]
    assert ledger.current({"a": "tree-a"}, "other harness") == []


def test_seeds_done_are_per_lab_variant_and_load() -> None:
    entries = [
        _entry("a", "solution", 1000),
        _entry("a", "solution", 1001),
        _entry("a", "solution", 1002, load=0),
        _entry("a", "starter", 1003),
    ]
    assert seeds_done(entries, "a", "solution", 2) == {1000, 1001}
    assert seeds_done(entries, "a", "solution", 0) == {1002}


def test_the_table_counts_per_load_and_names_every_unexpected_run() -> None:
    entries = [
        _entry("a", "solution", 1000),
        _entry("a", "starter", 1000, ok=False),
        _entry("a", "starter", 1001),
        _entry("a", "solution", 1002, load=0),
        _entry("a", "wrong/gone", 1000),  # no longer a variant of the lab
    ]
    text = table(entries, [("a", ["starter", "solution"])], [0, 2])
    assert "| a | 2 | 1 of 1 (each variant ≥ 0) | 2 of 3 (each variant ≥ 1) |" in text
    assert "**1 of 1** | **2 of 3**" in text
    assert "- a `starter` LOAD=2: seed x: also failed" in text


def test_an_entry_keeps_what_the_run_found() -> None:
    variant = Variant("wrong", "w", None, frozenset({"test_1"}))
    run = ProofRun(variant, 7, 1, frozenset(), "", 3.14159, "")
    entry = entry_for(run, "a", 2, 3, "t", "h")
    assert (entry.variant, entry.seed, entry.as_expected) == ("wrong/w", 7, False)
    assert "passed ['test_1'], which must fail" in entry.why
    assert entry.seconds == 3.14


def test_rewrite_keeps_only_the_runs_given(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for seed in (1000, 1001, 1002):
        ledger.append(_entry("a", "solution", seed))
    ledger.rewrite([e for e in ledger.entries() if e.seed != 1001])
    assert [e.seed for e in ledger.entries()] == [1000, 1002]
    assert not list(tmp_path.glob("*.tmp"))
