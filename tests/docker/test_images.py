"""The docker backend's images: built once from local pieces, reused by digest, overridable."""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness import SetupError
from harness.images import (
    BASE_IMAGE_ENV,
    TOXIPROXY_IMAGE_ENV,
    Images,
    digest,
    ensure_base_image,
    ensure_images,
    ensure_rootfs_image,
    ensure_toxiproxy_image,
    is_static,
    pinned_requirements,
)
from harness.tools import find_toxiproxy

pytestmark = pytest.mark.docker


def test_digest_is_short_and_stable() -> None:
    assert digest("a", "b") == digest("a", "b")
    assert digest("a", "b") != digest("ab")
    assert len(digest("x")) == 12


def test_static_binaries_are_told_apart(tmp_path: Path) -> None:
    assert is_static(find_toxiproxy())  # built with CGO disabled by make setup
    assert not is_static(Path(os.path.realpath(sys.executable)))
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\n")
    assert not is_static(text)


def test_requirements_are_pinned_to_the_host() -> None:
    pinned = pinned_requirements()
    assert f"uvicorn=={importlib.metadata.version('uvicorn')}" in pinned
    assert pinned_requirements(["surely-not-installed-pkg"]) == ["surely-not-installed-pkg"]


def test_images_are_reused_when_nothing_changed(docker_client: Any, docker_images: Images) -> None:
    start = time.monotonic()
    again = ensure_images(docker_client, progress=pytest.fail)  # any build would report
    assert time.monotonic() - start < 3.0
    assert again == docker_images


def test_base_image_has_what_services_import(docker_client: Any, docker_images: Images) -> None:
    script = (
        "import starlette, uvicorn, httpx, tenacity, prometheus_client, opentelemetry.sdk, psycopg;"
        "import harness.service_kit; print(uvicorn.__version__)"
    )
    out = docker_client.containers.run(docker_images.base, ["python3", "-c", script], remove=True)
    assert out.decode().strip() == importlib.metadata.version("uvicorn")


def test_toxiproxy_image_runs_the_local_binary(docker_client: Any, docker_images: Images) -> None:
    out = docker_client.containers.run(docker_images.toxiproxy, ["-version"], remove=True)
    assert b"2." in out


def test_a_base_image_override_is_used_as_the_root(
    docker_client: Any, docker_images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.environ.get(BASE_IMAGE_ENV):
        pytest.skip(f"{BASE_IMAGE_ENV} is already set")
    rootfs = ensure_rootfs_image(docker_client, progress=pytest.fail)
    monkeypatch.setenv(BASE_IMAGE_ENV, rootfs)
    # The same root under another name: same digest, so the same image and no build.
    assert ensure_base_image(docker_client, progress=pytest.fail) == docker_images.base


def test_a_toxiproxy_image_override_is_used_as_is(
    docker_client: Any, docker_images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOXIPROXY_IMAGE_ENV, docker_images.toxiproxy)
    assert ensure_toxiproxy_image(docker_client, progress=pytest.fail) == docker_images.toxiproxy


def test_an_override_that_cannot_be_pulled_says_what_to_do(
    docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOXIPROXY_IMAGE_ENV, "chaoslab-no-such-registry.invalid/toxiproxy:1")
    with pytest.raises(SetupError, match=f"{TOXIPROXY_IMAGE_ENV}=.*could not pull") as caught:
        ensure_toxiproxy_image(docker_client)
    assert f"unset {TOXIPROXY_IMAGE_ENV}" in str(caught.value)
