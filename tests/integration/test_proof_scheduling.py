"""`make test` runs one lab's proofs on one worker, labs side by side: a lab's verdicts are
made to hold beside other labs' load, not beside copies of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.proof_scheduling import lab_of

LABS = {"retry-storm", "convergence"}


def test_a_proof_id_names_its_lab() -> None:
    assert lab_of("t.py::test_variant_gets_its_verdict[retry-storm:wrong/no_jitter]", LABS) == (
        "retry-storm"
    )
    assert lab_of("t.py::test_variant_gets_its_verdict_on_docker[convergence:solution]", LABS)
    assert lab_of("t.py::test_variant_gets_its_verdict[ping:solution]", LABS) is None
    assert lab_of("t.py::test_manifest_is_sound[retry-storm]", LABS) is None


PROOFS = """
import os, time, pytest
LABS = ["retry-storm", "convergence", "read-your-writes"]
CASES = [(lab, n) for lab in LABS for n in range(4)]

@pytest.mark.parametrize(("lab", "n"), CASES, ids=[f"{lab}:v{n}" for lab, n in CASES])
def test_variant_gets_its_verdict(lab, n):
    time.sleep(0.1)
    with open(os.environ["WORKERS_SEEN"], "a") as seen:
        seen.write(f"{lab} {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_a_labs_proofs_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_xdist_make_scheduler  # noqa: F401\n"
    )
    (tmp_path / "test_proofs.py").write_text(PROOFS)
    seen = tmp_path / "seen.txt"
    pytest_args = ["-p", "no:cacheprovider", "-q", "-n", "3", "--dist", "loadgroup"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, "--rootdir", str(tmp_path), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "WORKERS_SEEN": str(seen), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workers: dict[str, set[str]] = {}
    for line in seen.read_text().splitlines():
        lab, worker = line.split()
        workers.setdefault(lab, set()).add(worker)
    assert len(workers) == 3
    assert all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) > 1, "labs ran side by side"
