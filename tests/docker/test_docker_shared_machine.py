"""The shared-machine tests of tests/integration/test_shared_machine.py, on the docker backend:
a run never touches another live run's containers, and signals at random moments leave none."""

from __future__ import annotations

from typing import Any

import pytest

from harness.images import Images
from tests.integration.test_shared_machine import (
    bystander,
    test_a_killed_run_is_reaped_from_its_own_tmpdir_only_when_dead,
    test_a_run_in_another_tmpdir_is_left_alone,
    test_signals_at_random_moments_leave_nothing_and_spare_a_live_run,
)

pytestmark = pytest.mark.docker
__all__ = [
    "bystander",
    "test_a_killed_run_is_reaped_from_its_own_tmpdir_only_when_dead",
    "test_a_run_in_another_tmpdir_is_left_alone",
    "test_signals_at_random_moments_leave_nothing_and_spare_a_live_run",
]


@pytest.fixture
def docker(docker_client: Any, docker_images: Images) -> Any:
    return docker_client
