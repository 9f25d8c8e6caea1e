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


@pytest.mark.parametrize(
    ("lab", "variant"),
    [pytest.param(lab, v, marks=_marks(lab)) for lab, v in VARIANTS],
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
