"""Every lab proves itself on the docker backend too: same checks, same verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import Lab, catalogue
from harness.images import Images
from tests.labs.test_labs_prove_themselves import check, failed

pytestmark = pytest.mark.docker
LABS = catalogue()


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_starter_fails_exactly_the_checks_the_lab_is_about(
    lab: Lab, tmp_path: Path, docker_client: Any, docker_images: Images
) -> None:
    verdict = check(lab, tmp_path, "--backend", "docker")
    assert failed(verdict) == set(lab.starter_fails), verdict["output"]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_solution_passes_every_check(
    lab: Lab, tmp_path: Path, docker_client: Any, docker_images: Images
) -> None:
    verdict = check(lab, tmp_path, "--solution", "--backend", "docker")
    assert verdict["ok"], verdict["output"]
