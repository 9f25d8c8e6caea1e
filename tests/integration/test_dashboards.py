"""Every panel of every dashboard in dashboards/ runs against the real Prometheus (or Jaeger)
of its lab's run (the reference solution, under a little traffic and a fault or two): each
query parses and returns data. The harness's own dashboard runs on a lab with Prometheus, under
the harness's traffic and a fault."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import Client, Faults, LabEnvironment, Traffic, find_lab
from harness.metrics import install_prometheus
from harness.tracing import install_jaeger
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
SCRAPED_WITHIN = 15.0  # seconds: Prometheus's first scrape comes about 5 s after it starts


def _red_metrics_traffic(env: LabEnvironment) -> None:
    shop = env.url("checkout")
    with httpx.Client(timeout=5, trust_env=False) as http:
        placed = []
        for n in range(20):
            answer = http.post(
                f"{shop}/checkout", json={"user": f"u-{n}", "amount": 10.0 + n, "items": ["a"]}
            )
            if answer.status_code == 200:
                placed.append(answer.json()["order_id"])
        for order_id in placed[:5]:
            http.get(f"{shop}/orders/{order_id}")


def _harness_traffic(env: LabEnvironment) -> None:
    """The harness's own clients (whose requests its metrics count), and a fault meanwhile."""
    shop = env.url("checkout")

    def checkout(client: Client) -> None:
        with client.op("checkout", None) as op:
            answer = client.http.post(
                f"{shop}/checkout", json={"user": "u-1", "amount": 10.0, "items": ["a"]}
            )
            op.ok(answer.status_code)
        client.sleep(0.02)

    with Traffic(seed=1).start(checkout, clients=2) as run:
        time.sleep(0.5)
        with Faults(env).latency("checks -> checkout", 100):
            env.prometheus.wait_scraped_after(time.time(), job="chaoslab", timeout=SCRAPED_WITHIN)
        run.stop()


def _tracing_traffic(env: LabEnvironment) -> None:
    """Orders through the gateway: calm, then slow on orders -> inventory, then inventory
    failing; until Jaeger holds the traces of all three."""
    shop = f"{env.url('gateway')}/orders"
    faults = Faults(env)
    began = time.time()

    def order(client: Client) -> None:
        with client.op("order", None) as op:
            answer = client.http.post(shop, json={"order": "o-1", "sku": "sku-1", "qty": 1})
            op.ok(answer.status_code)
        client.sleep(0.02)

    with Traffic(seed=1).start(order, clients=2) as run:
        time.sleep(0.3)
        with faults.latency("orders -> inventory", 300):
            time.sleep(0.7)
        with faults.http("inventory", status=503, path="/reservations"):
            time.sleep(0.4)
        run.stop()

    def failed_and_slow(traces: dict[str, Any]) -> bool:
        spans = [s for t in traces.values() for s in t.spans]
        return any(s.is_error for s in spans) and any(s.duration_ms >= 300 for s in spans)

    env.jaeger.settle(["gateway"], since=began, complete=failed_and_slow, timeout=10)


TRAFFIC: dict[str, Callable[[LabEnvironment], None]] = {
    "red-metrics": _red_metrics_traffic,
    "harness": _harness_traffic,
    "tracing": _tracing_traffic,
}
HARNESS_RUNS_ON = "red-metrics"  # any lab with a Prometheus


def _tag_of(dashboard: dict[str, Any]) -> str:
    (tag,) = [tag for tag in dashboard["tags"] if tag != "chaoslab"]
    return str(tag)


def _lab_of(dashboard: dict[str, Any]) -> str:
    tag = _tag_of(dashboard)
    return HARNESS_RUNS_ON if tag == "harness" else tag


def _kind(dashboard: dict[str, Any]) -> str:
    """The data source its panels read: "prometheus" or "jaeger"."""
    (kind,) = {panel["datasource"]["type"] for panel in dashboard["panels"]}
    return str(kind)


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _searches(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("queryType") == "search"
    ]


def _jaeger_params(target: dict[str, Any], since: float) -> dict[str, str]:
    """A Grafana Jaeger search as Jaeger's query API takes it (tags: logfmt to JSON)."""
    params = {
        "service": str(target["service"]),
        "limit": str(target.get("limit", 20)),
        "start": str(int(since * 1_000_000)),
        "end": str(int((time.time() + 60) * 1_000_000)),
    }
    for key in ("operation", "minDuration", "maxDuration"):
        if key in target:
            params[key] = str(target[key])
    if target.get("tags"):
        pairs = dict(pair.split("=", 1) for pair in str(target["tags"]).split())
        params["tags"] = json.dumps(pairs)
    return params


Run = tuple[dict[str, Any], LabEnvironment]


@pytest.fixture(scope="module", params=DASHBOARDS, ids=[d.stem for d in DASHBOARDS])
def dashboard_run(request: pytest.FixtureRequest) -> Iterator[Run]:
    dashboard = json.loads(Path(request.param).read_text())
    slug = _lab_of(dashboard)
    if _kind(dashboard) == "jaeger":
        install_jaeger()
        with LabEnvironment(find_lab(slug), solution=True, seed=1) as env:
            TRAFFIC[_tag_of(dashboard)](env)
            yield dashboard, env
        return
    install_prometheus()
    with LabEnvironment(find_lab(slug), solution=True, seed=1) as env:
        env.prometheus.wait_scraped(timeout=SCRAPED_WITHIN)  # rate() needs samples before
        TRAFFIC[_tag_of(dashboard)](env)
        env.prometheus.wait_scraped_after(time.time(), timeout=SCRAPED_WITHIN)
        yield dashboard, env


def test_every_dashboard_belongs_to_a_lab_with_its_data_source() -> None:
    assert DASHBOARDS, "dashboards/ holds no dashboard"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        lab = find_lab(_lab_of(dashboard))
        assert dashboard["uid"] == f"chaoslab-{_tag_of(dashboard)}"
        if _kind(dashboard) == "jaeger":
            assert lab.tracing is not None, f"{path.name}: lab '{lab.slug}' runs no Jaeger"
            assert _searches(dashboard), f"{path.name} has no search"
            for title, target in _searches(dashboard):
                assert target["service"] in lab.tracing.services, f"{path.name}: {title}"
        else:
            assert lab.metrics is not None, f"{path.name}: lab '{lab.slug}' runs no Prometheus"
            assert _queries(dashboard), f"{path.name} has no query"


def test_every_panel_query_parses_and_returns_data(
    dashboard_run: Run,
) -> None:
    dashboard, env = dashboard_run
    empty = []
    if _kind(dashboard) == "jaeger":
        for title, target in _searches(dashboard):
            params = _jaeger_params(target, time.time() - 300)
            answer = httpx.get(f"{env.jaeger_url}/api/traces", params=params, timeout=10)
            assert answer.status_code == 200, f"{title}: {answer.text[:300]}"
            if not answer.json().get("data"):
                empty.append(f"{title}: {params}")
        assert not empty, "panels with no data:\n" + "\n".join(empty)
        return
    for title, expr in _queries(dashboard):
        now = time.time()
        if not env.prometheus.query(expr):
            empty.append(f"{title}: {expr}")
        # A range query too, as Grafana sends them.
        env.prometheus.query_range(expr, now - 60, now, step=1)
    assert not empty, "panels with no data:\n" + "\n".join(empty)
