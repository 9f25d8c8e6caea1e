"""A lab's Compose profile comes up with the Compose this machine has (Debian's docker-compose
1.29, or `docker compose` v2) and answers through its proxies, loaded from its config file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from harness.images import Images

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
PROFILE = "idempotency-keys"  # the first lab: API on 8474, its checks' proxy on 20000


def compose() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    pytest.skip("neither docker-compose nor 'docker compose' is installed")


def busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_labs_profile_answers_through_its_proxies(docker_images: Images) -> None:
    if busy(8474) or busy(20000):
        pytest.skip("ports 8474 or 20000 are taken (a Compose profile of this lab running?)")
    command = [*compose(), "-p", f"chaoslab-test-{os.getpid()}", "--profile", PROFILE]
    env = {
        **os.environ,
        "CHAOSLAB_BASE_IMAGE": docker_images.base,
        "CHAOSLAB_TOXIPROXY_IMAGE": docker_images.toxiproxy,
    }
    up = subprocess.run(
        [*command, "up", "-d"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get("http://127.0.0.1:20000/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "payments never answered through its proxy"
            time.sleep(0.5)
        proxies = httpx.get("http://127.0.0.1:8474/proxies", timeout=5).json()
        assert set(proxies) == {"checks__payments", "payments__ledger"}
        # checks -> payments -> ledger: both proxies carry the charge.
        charge = httpx.post(
            "http://127.0.0.1:20000/charges", json={"order": "o-1", "amount": 100}, timeout=10
        )
        assert charge.status_code == 201, charge.text
    finally:
        subprocess.run(
            [*command, "down", "-v", "--remove-orphans"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
            timeout=120,
        )
