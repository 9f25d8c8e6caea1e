"""Every lab proves itself on the docker backend too: same checks, same verdicts, for the
starter, the solution and every wrong and also-correct fix."""

from __future__ import annotations

import random
from typing import Any

import pytest

from harness import Lab
from harness.images import Images
from harness.proof import check_variant
from harness.variants import Variant
from tests.labs.test_labs_prove_themselves import VARIANTS, _marks

pytestmark = pytest.mark.docker

# Proofs whose verdict the docker backend does not yet hold every run, each with why. They
# still run (xfail, not strict); the process backend proves them every run.
NOT_YET_ON_DOCKER = {
    ("outbox-projection", "wrong/marks_sent_before_publishing"): (
        "Docker's DNS at times answers 'no such host' for the relay just after orders "
        "restarts; Toxiproxy then drops the publish, and this fix (which deletes before "
        "sending) also fails check 2, in about 1 run in 4"
    ),
    ("graceful-shutdown", "wrong/poison_retried_forever"): (
        "a CI run (2026-11-30) had it also fail checks 1 and 2 on docker: consumer-2 exited "
        "0.61 s after SIGTERM with three jobs in hand, as if one of its workers had died "
        "earlier and gather() raised at once; this fix's poison loop makes about 100 queue "
        "calls a second, and one failed call kills a worker. Not seen again in 26 docker runs "
        "(12 beside another lab) nor in 10 process runs at LOAD=2 JOBS=3; the cause is not "
        "found yet"
    ),
}


def _docker_marks(lab: Lab, variant: Variant) -> list[pytest.MarkDecorator]:
    why = NOT_YET_ON_DOCKER.get((lab.slug, variant.label))
    return [*_marks(lab, variant), *([pytest.mark.xfail(reason=why, strict=False)] if why else [])]


@pytest.mark.parametrize(
    ("lab", "variant"),
    [pytest.param(lab, v, marks=_docker_marks(lab, v)) for lab, v in VARIANTS],
    ids=[f"{lab.slug}:{variant.label}" for lab, variant in VARIANTS],
)
def test_variant_gets_its_verdict_on_docker(
    lab: Lab, variant: Variant, docker_client: Any, docker_images: Images
) -> None:
    seed = random.SystemRandom().randrange(10**6)
    run = check_variant(lab, variant, seed, backend="docker")
    assert run.as_expected, (
        f"{lab.slug} {variant.label} on docker: {run.why()}\n{run.setup_error}\n{run.output}"
    )
