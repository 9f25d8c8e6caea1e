"""docker-compose.yml, compose/*.toxiproxy.json and compose/*.prometheus.yml are generated
from the labs' manifests (`chaoslab compose`): the repository's copies must be current."""

from __future__ import annotations

from pathlib import Path

from harness.compose import compose_files, toxiproxy_config
from harness.lab import catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_compose_files_are_current() -> None:
    files = compose_files(catalogue(ROOT / "labs"))
    stale = [rel for rel, text in files.items() if (ROOT / rel).read_text() != text]
    extra = sorted(
        f"compose/{p.name}"
        for pattern in ("*.toxiproxy.json", "*.prometheus.yml")
        for p in (ROOT / "compose").glob(pattern)
        if f"compose/{p.name}" not in files
    )
    # Out of date, or left from a lab that is gone: run '.venv/bin/chaoslab compose'.
    assert (stale, extra) == ([], [])


def test_each_lab_has_its_own_ports_and_every_link_a_proxy() -> None:
    labs = catalogue(ROOT / "labs")
    listens = [p["listen"] for i, lab in enumerate(labs) for p in toxiproxy_config(lab, i)]
    assert len(listens) == len(set(listens))
    for i, lab in enumerate(labs):
        assert [p["name"] for p in toxiproxy_config(lab, i)] == [x.name for x in lab.links]


def test_a_service_that_reads_prometheus_reaches_its_profiles_prometheus() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    controller = compose.split("  canary-deploy-controller:\n", 1)[1].split("\n  canary-deploy-")[0]
    assert 'PROMETHEUS_URL: "http://canary-deploy-prometheus:9090"' in controller
    assert "  canary-deploy-prometheus:\n" in compose


def test_a_service_with_a_database_reaches_its_profiles_postgres_once_it_started() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    replica = compose.split("  schema-migration-accounts-1:\n", 1)[1].split(
        "\n  schema-migration-"
    )[0]
    assert (
        'DATABASE_URL: "postgresql://chaoslab@schema-migration-postgres:5432/chaoslab"' in replica
    )
    assert "schema-migration-postgres]" in replica  # in depends_on
    postgres = compose.split("  schema-migration-postgres:\n", 1)[1].split("\n  ")[0]
    assert "chaoslab-postgres:local" in postgres
