"""docker-compose.yml: valid, its lab shell runs the services' image, and a lab's profile comes
up with the Compose this machine has (Debian's docker-compose 1.29, or `docker compose` v2) and
answers through its proxies, loaded from its config file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import psycopg
import pytest

from harness.compose import (
    FIRST_JAEGER_PORT,
    FIRST_POSTGRES_PORT,
    FIRST_PROMETHEUS_PORT,
    proxy_port,
)
from harness.images import Images
from harness.lab import catalogue
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


def compose(
    *args: str, project: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-p", project, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
        env=env,
    )


def test_compose_file_is_valid_and_its_lab_shell_has_the_services_image(
    docker_client: Any, docker_images: Images
) -> None:
    # `python -m harness.images` gives the images the stable names the compose file uses.
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
        compose("down", "-v", "--remove-orphans", project=project)
    # Nothing of the project outlives it: its named volumes go with it (`down -v`).
    label = f"com.docker.compose.project={project}"
    assert docker_client.volumes.list(filters={"label": label}) == []


PROFILE = "idempotency-keys"  # the first lab: API on 8474, its checks' proxy on 20000


def busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_labs_profile_answers_through_its_proxies(docker_images: Images) -> None:
    if busy(8474) or busy(20000):
        pytest.skip("ports 8474 or 20000 are taken (a Compose profile of this lab running?)")
    project = f"chaoslab-test-{os.getpid()}"
    env = {
        **os.environ,
        "CHAOSLAB_BASE_IMAGE": docker_images.base,
        "CHAOSLAB_TOXIPROXY_IMAGE": docker_images.toxiproxy,
    }
    try:
        up = compose("--profile", PROFILE, "up", "-d", project=project, env=env)
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
        compose("--profile", PROFILE, "down", "-v", "--remove-orphans", project=project, env=env)


def test_an_observability_profile_has_its_prometheus_scraping_the_lab(
    docker_images: Images,
) -> None:
    subprocess.run([sys.executable, "-m", "harness.images"], check=True, capture_output=True)
    slug = "red-metrics"
    index = [lab.slug for lab in catalogue(ROOT / "labs")].index(slug)
    port = FIRST_PROMETHEUS_PORT + index
    if busy(port):
        pytest.skip(f"port {port} is taken (a Compose profile of {slug} running?)")
    project = f"chaoslab-test-prom-{os.getpid()}"
    env = {**os.environ, "CHAOSLAB_BASE_IMAGE": docker_images.base}
    try:
        up = compose("--profile", slug, "up", "-d", project=project, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        api = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
                if [t["health"] for t in targets] == ["up"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "Prometheus never scraped checkout"
            time.sleep(0.5)
        assert targets[0]["labels"]["job"] == "checkout"
        groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        assert [r["name"] for g in groups for r in g["rules"]] == ["CheckoutErrorBudgetBurn"]
    finally:
        compose("--profile", slug, "down", "-v", "--remove-orphans", project=project, env=env)


def test_a_tracing_profile_has_its_jaeger_receiving_the_labs_spans(
    docker_images: Images,
) -> None:
    subprocess.run([sys.executable, "-m", "harness.images"], check=True, capture_output=True)
    slug = "tracing"
    labs = catalogue(ROOT / "labs")
    index = [lab.slug for lab in labs].index(slug)
    port = FIRST_JAEGER_PORT + index
    gateway = next(
        proxy_port(index, j)
        for j, link in enumerate(next(lab for lab in labs if lab.slug == slug).links)
        if link.source == "checks"
    )
    if busy(port) or busy(gateway):
        pytest.skip(f"port {port} or {gateway} is taken (a Compose profile of {slug} running?)")
    project = f"chaoslab-test-jaeger-{os.getpid()}"
    env = {**os.environ, "CHAOSLAB_BASE_IMAGE": docker_images.base}
    try:
        up = compose("--profile", slug, "up", "-d", project=project, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        deadline = time.monotonic() + 60
        while True:
            try:
                placed = httpx.post(
                    f"http://127.0.0.1:{gateway}/orders",
                    json={"order": "o-1", "sku": "sku-1", "qty": 1},
                    timeout=5,
                )
                # The lab's folder as it is (the starter): each service's spans still arrive.
                found = httpx.get(f"http://127.0.0.1:{port}/api/services", timeout=2).json()
                if placed.status_code == 201 and {"gateway", "inventory"} <= set(found["data"]):
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            assert time.monotonic() < deadline, "no span of an order reached Jaeger"
            time.sleep(0.5)
    finally:
        compose("--profile", slug, "down", "-v", "--remove-orphans", project=project, env=env)


def test_a_database_profile_has_its_postgres_serving_the_labs_replicas(
    docker_images: Images,
) -> None:
    subprocess.run([sys.executable, "-m", "harness.images"], check=True, capture_output=True)
    slug = "schema-migration"
    labs = catalogue(ROOT / "labs")
    index = [lab.slug for lab in labs].index(slug)
    port = FIRST_POSTGRES_PORT + index
    lb = next(
        proxy_port(index, j)
        for j, link in enumerate(next(lab for lab in labs if lab.slug == slug).links)
        if link.source == "checks" and link.target == "lb"
    )
    if busy(port) or busy(lb):
        pytest.skip(f"port {port} or {lb} is taken (a Compose profile of {slug} running?)")
    project = f"chaoslab-test-postgres-{os.getpid()}"
    env = {**os.environ, "CHAOSLAB_BASE_IMAGE": docker_images.base}
    try:
        up = compose("--profile", slug, "up", "-d", project=project, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        deadline = time.monotonic() + 60
        while True:
            try:
                # The starter, release 1, through the profile's balancer, on its PostgreSQL.
                put = httpx.put(
                    f"http://127.0.0.1:{lb}/accounts/a-1", json={"name": "Ada"}, timeout=5
                )
                got = httpx.get(f"http://127.0.0.1:{lb}/accounts/a-1", timeout=5)
                if put.status_code == 200 and got.json().get("name") == "Ada":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.monotonic() < deadline, "the profile's replicas never stored an account"
            time.sleep(0.5)
        with psycopg.connect(f"postgresql://chaoslab@127.0.0.1:{port}/chaoslab") as db:
            assert db.execute("SELECT name FROM accounts WHERE id = 'a-1'").fetchone() == ("Ada",)
    finally:
        compose("--profile", slug, "down", "-v", "--remove-orphans", project=project, env=env)
