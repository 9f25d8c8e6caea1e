"""The fixture lab `ping`, running on processes once per module and clean for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness import Lab, LabEnvironment


@pytest.fixture(scope="module")
def running(ping_lab: Lab) -> Iterator[LabEnvironment]:
    with LabEnvironment(ping_lab, seed=1) as env:
        yield env


@pytest.fixture
def env(running: LabEnvironment) -> Iterator[LabEnvironment]:
    running.reset()
    yield running
    running.reset()
