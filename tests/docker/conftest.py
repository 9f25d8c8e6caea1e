"""Fixtures of the docker backend's tests: they skip, saying why, where no engine answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from harness import SetupError
from harness.backends.docker import connect
from harness.images import Images, ensure_images


def _unavailable(why: str) -> None:
    """Skip, unless `make test-docker` asked for docker: then a missing piece is a failure."""
    if os.environ.get("CHAOSLAB_REQUIRE_DOCKER") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = connect(timeout=30)
    except SetupError as exc:
        _unavailable(f"no Docker engine reachable (run scripts/docker-engine.sh as root): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_images(docker_client: Any) -> Images:
    """The images, built once per machine (minutes the very first time, then a lookup)."""
    try:
        return ensure_images(docker_client)
    except SetupError as exc:
        _unavailable(f"the docker backend's images cannot be built here: {exc}")
        raise
