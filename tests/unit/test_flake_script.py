"""scripts/flake.py: a lab that `make test` proves alone is run alone by `make flake` too, and
only its runs made alone count in the table, whatever JOBS says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from harness import find_lab
from harness.proof_ledger import Entry

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "flake.py"


def _flake() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flake_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry(lab: str, jobs: int) -> Entry:
    return Entry(lab, "solution", 1000, 2, jobs, True, "", 10.0, "t" * 40, "h" * 40, "now")


def test_a_lab_proved_alone_runs_one_at_a_time() -> None:
    flake = _flake()
    assert "rate-limiting" in flake.ALONE
    assert flake.jobs_for(find_lab("rate-limiting"), 3) == 1
    assert flake.jobs_for(find_lab("idempotency-keys"), 3) == 3


def test_runs_of_a_lab_proved_alone_count_only_when_made_alone() -> None:
    flake = _flake()
    entries = [
        _entry("rate-limiting", 3),
        _entry("rate-limiting", 1),
        _entry("idempotency-keys", 3),
    ]
    kept = flake.as_run_alone(entries)
    assert [(e.lab, e.jobs) for e in kept] == [("rate-limiting", 1), ("idempotency-keys", 3)]
