"""docker-compose.yml: valid, and its lab shell runs the services' image as a compose user
expects."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from typing import Any

import pytest

from harness.images import Images
from tests.conftest import ROOT

pytestmark = pytest.mark.docker


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    pytest.skip("neither 'docker compose' nor 'docker-compose' is installed")
    raise AssertionError


def compose(*args: str, project: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-p", project, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )


def test_compose_file_is_valid_and_its_lab_shell_has_the_services_image(
    docker_client: Any, docker_images: Images
) -> None:
    # `python -m harness.images` gives the images the stable names the compose file uses.
    # (A lab's profile coming up and answering through its proxies: test_compose.py.)
    subprocess.run([sys.executable, "-m", "harness.images"], check=True, capture_output=True)
    project = f"chaoslabtest{int(time.time())}"
    assert compose("config", "-q", project=project).returncode == 0
    try:
        shell = compose(
            "run",
            "--rm",
            "-T",
            "lab-shell",
            "python3",
            "-c",
            "import starlette, harness",
            project=project,
        )
        assert shell.returncode == 0, shell.stderr
    finally:
        compose("down", "--remove-orphans", project=project)
