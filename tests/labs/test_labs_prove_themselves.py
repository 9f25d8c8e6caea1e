"""Every lab proves itself (rustlings' and Exercism's way, plus mutation testing): its manifest
is sound, its starter fails exactly the checks the lab is about, its reference solution and
every also-correct fix pass, and every plausible wrong fix fails exactly the checks its
docstring names, with exit 1 (it starts and serves; exit 2 would only prove it is broken).

Each variant is one test, so `pytest -n N --dist loadgroup` runs the labs in parallel workers,
each lab's variants one after the other on one worker (tests/proof_scheduling.py): the verdicts
are made to hold on a loaded machine (`make flake LOAD=2` shows it)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from harness import Lab, catalogue
from harness.proof import check_variant
from harness.variants import Variant, variants

LABS = catalogue()
VARIANTS = [(lab, variant) for lab in LABS for variant in variants(lab)]
# Labs whose verdicts do not yet hold while other labs run beside them on 2 cores: they are
# proven on their own, after the others (`make test` runs `-m alone` without workers).
# retry-storm judges waits of 100 to 600 ms: another worker's lab starting (a dozen Python
# processes importing at once) can stretch one attempt's waits by 300 ms, past what its
# checks 2 and 3 can tell from a wrong backoff (a CI run saw it once in about 20 runs).
# canary-deploy compares a canary's median latency with its baseline's over a few dozen
# requests per step: beside schema-migration's bulk work in PostgreSQL (300,000 rows seeded and
# backfilled) and another lab, the canaries of two of its wrong fixes answered two requests in
# three in 300 ms or more, and good ones were rolled back (a CI run, 2 of its 8 proofs).
# schema-migration is the noisy neighbour: PostgreSQL seeds and backfills 300,000 rows in each
# of its runs, and beside it on docker the tracing lab got one slow order where its check 2
# needs two (a CI run, 1 of 202 docker proofs). Its own verdicts hold under load (make flake
# LOAD=2: 30 of 30); it runs alone so that it starves no other lab.
ALONE = {"rate-limiting", "retry-storm", "canary-deploy", "schema-migration"}


def _marks(lab: Lab, variant: Variant) -> list[pytest.MarkDecorator]:
    marks = [pytest.mark.alone] if lab.slug in ALONE else []
    # Wrong fixes are three proofs in four: `make test-wrong` runs them, so that `make test`
    # stays near 5 minutes on 2 cores as the catalogue grows (CI runs both).
    if variant.kind == "wrong":
        marks.append(pytest.mark.wrong_fix)
    return marks


MIN_WRONG_FIXES = 5
MIN_ALSO_CORRECT = 1
pytestmark = pytest.mark.integration


def check_names(lab: Lab) -> set[str]:
    return set(lab.check_names())


def test_the_catalogue_has_labs() -> None:
    assert {lab.slug for lab in LABS} >= {"idempotency-keys", "circuit-breaker"}


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_manifest_is_sound(lab: Lab) -> None:
    assert (lab.root / "README.md").is_file(), "a lab needs a README with its story"
    assert all(hint.strip() for hint in lab.hints)
    assert lab.starter_fails, "[checks] starter_fails must name the checks the lab is about"
    unknown = set(lab.starter_fails) - check_names(lab)
    assert not unknown, f"starter_fails names checks that do not exist: {unknown}"
    owned = {Path(f).relative_to("services").as_posix() for f in lab.learner_files}
    solved = {
        p.relative_to(lab.solution_dir).as_posix()
        for p in lab.solution_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert solved == owned, "solution/ must hold exactly the learner's files"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_every_lab_has_wrong_and_also_correct_fixes(lab: Lab) -> None:
    found = variants(lab)  # a malformed docstring fails here, naming the file
    wrong = [v for v in found if v.kind == "wrong"]
    also = [v for v in found if v.kind == "also-correct"]
    assert len(wrong) >= MIN_WRONG_FIXES, f"{lab.slug}: {len(wrong)} wrong fixes in wrong/"
    assert len(also) >= MIN_ALSO_CORRECT, f"{lab.slug}: no also-correct fix"
    for variant in wrong:
        unknown = variant.expected_failures - check_names(lab)
        assert not unknown, f"{variant.path}: 'Rejected by' names no such check: {unknown}"
        assert variant.expected_failures != frozenset(check_names(lab)) or len(wrong) == 1, (
            f"{variant.path} fails every check: it is broken, not wrong in one way"
        )


@pytest.mark.parametrize(
    ("lab", "variant"),
    # One lab's variants run one after the other on one worker (`--dist loadgroup`): labs in
    # parallel, never two copies of one lab's load at once.
    [pytest.param(lab, v, marks=_marks(lab, v)) for lab, v in VARIANTS],
    ids=[f"{lab.slug}:{variant.label}" for lab, variant in VARIANTS],
)
def test_variant_gets_its_verdict(lab: Lab, variant: Variant) -> None:
    seed = random.SystemRandom().randrange(10**6)
    run = check_variant(lab, variant, seed, backend=os.environ.get("CHAOSLAB_BACKEND", "process"))
    expected = sorted(variant.expected_failures) or "none"
    assert run.as_expected, (
        f"{lab.slug} {variant.label}: {run.why()}\n"
        f"expected to fail: {expected}; failed: {sorted(run.failed) or 'none'}\n"
        f"{run.setup_error}\n{run.output}"
    )
