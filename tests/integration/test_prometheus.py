"""A lab with a `[prometheus]` table gets the real Prometheus, per run: it scrapes the lab's
services directly, evaluates the lab's rule files, answers the checks' queries, and is gone
with the run."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import Client, LabEnvironment, html_report, load_lab
from harness.metrics import PrometheusError, install_prometheus
from harness.metrics.panels import capture
from harness.metrics.rule_tests import Segment, firing_minutes
from harness.metrics.rule_tests import Traffic as RouteTraffic
from tests.conftest import FIXTURE_LABS

pytestmark = pytest.mark.integration

METERED = FIXTURE_LABS / "metered"
WITHIN = 15.0  # seconds: scrapes and evaluations every 0.5 s, on a loaded machine


@pytest.fixture(scope="module")
def env() -> Iterator[LabEnvironment]:
    install_prometheus()
    with LabEnvironment(load_lab(METERED), seed=1) as running:
        yield running


def eventually(probe: object, what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not probe():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {WITHIN} s: {what}"
        time.sleep(0.1)


def test_scrapes_the_services_directly(env: LabEnvironment) -> None:
    env.prometheus.wait_scraped(timeout=WITHIN)
    targets = {t["labels"]["job"]: t for t in env.prometheus.targets()}
    assert set(targets) == {"shop", "chaoslab"}  # the lab's service, and the harness's metrics
    target = targets["shop"]
    assert target["labels"]["service"] == "shop"
    # Directly: a fault on the checks' link to the shop must not blind the monitoring.
    assert target["scrapeUrl"] == f"{env.direct_url('shop')}/metrics"


def test_counts_what_the_service_counted(env: LabEnvironment) -> None:
    for _ in range(5):
        httpx.post(f"{env.url('shop')}/buy", timeout=5).raise_for_status()
    eventually(
        lambda: env.prometheus.value('shop_sales_total{status="ok"}') == 5.0,
        "five sales in Prometheus",
    )


def test_a_reader_service_queries_the_runs_prometheus(env: LabEnvironment) -> None:
    """`readers = ["shop"]`: the shop gets PROMETHEUS_URL, straight to the run's Prometheus."""
    httpx.post(f"{env.url('shop')}/buy", timeout=5).raise_for_status()

    def seen_by_the_shop() -> bool:
        answer = httpx.get(f"{env.url('shop')}/sales", timeout=5).json()
        return answer["status"] == "success" and bool(answer["data"]["result"])

    eventually(seen_by_the_shop, "the shop reading its own sales from Prometheus")
    series = env.prometheus.query_range("shop_sales_total", time.time() - 30, time.time(), step=0.5)
    assert [s.labels["service"] for s in series] == ["shop"]
    # The five sales before, and this one once Prometheus has scraped it.
    assert series[0].points[-1][1] in (5.0, 6.0)


def test_the_harness_shows_its_faults_and_what_its_clients_saw(env: LabEnvironment) -> None:
    from harness import Faults, Traffic

    def buy(client: Client) -> None:
        with client.op("buy", None) as op:
            answer = client.http.post(f"{env.url('shop')}/buy")
            op.ok(answer.status_code)
        client.sleep(0.02)

    faults = Faults(env)
    counted = 'sum(chaoslab_requests_total{service="shop",outcome="2xx"})'
    with Traffic(seed=1).start(buy, clients=2) as run:
        with faults.latency("checks -> shop", 50):
            began = time.monotonic()
            eventually(
                lambda: env.prometheus.value("max(chaoslab_fault_active)") == 1.0,
                "the fault on in Prometheus",
            )
            # On until a request made under it has ended: Prometheus may see the fault before
            # any client's request went through it, on a busy machine.
            eventually(
                lambda: any(op.start > began and op.end for op in list(run.history)),
                "a request made during the fault answered",
            )
        # Still sending: however loaded the machine, the counter gets there while it runs.
        deadline = time.monotonic() + WITHIN
        while (env.prometheus.value(counted) or 0) < 4:
            now = time.time()
            assert time.monotonic() < deadline, (
                "the clients' requests were not counted by the service they called: "
                f"{len(run.history)} operations; in Prometheus: "
                f"{env.prometheus.series('chaoslab_requests_total', now - 60, now)}; "
                f"in the exporter: {_local_counts(env)}"
            )
            time.sleep(0.1)
        run.stop()
    eventually(
        lambda: env.prometheus.value("max(chaoslab_fault_active)") == 0.0, "the fault healed"
    )
    (fault,) = env.prometheus.series("chaoslab_fault_active", time.time() - 60, time.time())
    assert fault["fault"] == "latency 50 ms on checks -> shop (downstream)"
    assert fault["lab"] == "metered"
    slow = (
        'sum(chaoslab_request_duration_seconds_bucket{service="shop",le="+Inf"})'
        ' - sum(chaoslab_request_duration_seconds_bucket{service="shop",le="0.05"})'
    )
    # The 50 ms latency shows in what the clients waited, once Prometheus scraped it.
    eventually(lambda: (env.prometheus.value(slow) or 0) >= 1, "a request slower than 50 ms")


def _local_counts(env: LabEnvironment) -> list[tuple[str, dict[str, str], float]]:
    """What the harness's exporter holds itself (to tell a counting bug from a scrape one)."""
    assert env.harness_metrics is not None
    return [
        (sample.name, sample.labels, sample.value)
        for metric in env.harness_metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "chaoslab_requests_total"
    ]


def test_evaluates_the_labs_rules(env: LabEnvironment) -> None:
    httpx.post(f"{env.url('shop')}/buy", timeout=5).raise_for_status()
    eventually(lambda: env.prometheus.value("shop:sales:total") is not None, "recording rule")
    eventually(
        lambda: any(
            a.name == "ShopHasSold" and a.state == "firing" for a in env.prometheus.alerts()
        ),
        "the alert firing",
    )
    assert {r["name"]: r["health"] for r in env.prometheus.rules()} == {
        "shop:sales:total": "ok",
        "ShopHasSold": "ok",
    }


def test_a_bad_query_is_a_clear_error(env: LabEnvironment) -> None:
    with pytest.raises(PrometheusError, match="parse error"):
        env.prometheus.query("sum(")


def test_is_gone_with_the_run() -> None:
    with LabEnvironment(load_lab(METERED), seed=2) as running:
        url = running.prometheus_url
        assert url is not None
        assert running.prometheus.ready()
        pid = running.backend._prometheus._process.pid  # type: ignore[attr-defined]
        assert pid is not None
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/-/ready", timeout=1)
    assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def test_a_lab_without_the_table_runs_none(ping_lab: object) -> None:
    with LabEnvironment(ping_lab, seed=3) as running:  # type: ignore[arg-type]
        assert running.prometheus_url is None
        with pytest.raises(RuntimeError, match="runs no Prometheus"):
            running.prometheus  # noqa: B018


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_rule_file_promtool_refuses_is_left_out_and_said(tmp_path: Path) -> None:
    root = tmp_path / "metered"
    shutil.copytree(METERED, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "services" / "rules.yml").write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n"
    )
    with LabEnvironment(load_lab(root), seed=4) as running:
        assert running.prometheus.ready()  # Prometheus would refuse to start with the file
        assert running.prometheus.rules() == []
        (problem,) = running.rule_problems.values()
        assert "unclosed left parenthesis" in problem
        assert list(running.rule_problems) == ["services/rules.yml"]


ALERT_RULES = """\
groups:
  - name: g
    rules:
      - alert: HalfFailing
        expr: sum(rate(req_total{code="5xx"}[5m])) / sum(rate(req_total[5m])) > 0.5
"""


def test_promtool_says_at_which_minutes_an_alert_fired(tmp_path: Path) -> None:
    program = install_prometheus()
    rules = tmp_path / "rules.yml"
    rules.write_text(ALERT_RULES)
    traffic = [
        RouteTraffic(
            "req_total",
            {"job": "j"},
            (Segment(20, 600, 0.0), Segment(20, 600, 1.0), Segment(20, 600, 0.0)),
        )
    ]

    fired = firing_minutes(program, rules, "HalfFailing", traffic, list(range(0, 61, 5)))

    # Half the 5-minute window fails from minute 22.5 to 42.5: firing at 25, 30, 35 and 40.
    assert fired == [25, 30, 35, 40]
    assert firing_minutes(program, rules, "NoSuchAlert", traffic, [30]) == []


def test_a_ten_second_spike_is_one_step_of_the_series() -> None:
    (good, good_values), (bad, bad_values) = RouteTraffic(
        "req_total", {"route": "/x"}, (Segment(1 / 6, 60, 0.0), Segment(1 / 6, 60, 1.0))
    ).series()

    assert good == 'req_total{code="2xx", route="/x"}'
    assert bad == 'req_total{code="5xx", route="/x"}'
    assert good_values == "0 10 10"
    assert bad_values == "0 0 10"


def test_refused_requests_are_a_4xx_counter_of_their_own() -> None:
    series = RouteTraffic("req_total", {}, (Segment(1 / 6, 600, 0.01, refused=0.05),)).series()

    assert series == [
        ('req_total{code="2xx"}', "0 94"),
        ('req_total{code="4xx"}', "0 5"),
        ('req_total{code="5xx"}', "0 1"),
    ]


def test_a_dashboards_panels_are_drawn_from_the_run(env: LabEnvironment, tmp_path: Path) -> None:
    dashboard = tmp_path / "metered.json"
    dashboard.write_text(
        json.dumps(
            {
                "panels": [
                    {
                        "title": "Sales",
                        "fieldConfig": {"defaults": {"unit": "short"}},
                        "targets": [{"expr": "shop_sales_total", "legendFormat": "{{status}}"}],
                    },
                    {"title": "Broken", "targets": [{"expr": "sum("}]},
                ]
            }
        )
    )
    httpx.post(f"{env.url('shop')}/buy", timeout=5).raise_for_status()
    env.prometheus.wait_scraped(timeout=WITHIN)
    began = time.time() - 30
    sales, broken = capture(env.prometheus, dashboard, began, time.time(), began, 0.5)

    assert sales["title"] == "Sales"
    assert sales["unit"] == "short"
    assert [s["name"] for s in sales["series"]] == ["ok"]
    assert all(0 <= t <= 31 for t, _ in sales["series"][0]["points"])  # on the record's clock
    assert broken["series"] == []
    assert "parse error" in broken["error"]

    page = html_report.build(
        load_lab(METERED),
        {"checks": [], "seed": 1},
        {
            "ops": [],
            "faults": [{"description": "x", "start": 1, "end": 2}],
            "panels": [sales, broken],
        },
        tmp_path,
    )
    assert 'id="panel-0"' in page
    assert 'id="panel-1"' in page
    assert "<h2>Metrics</h2>" in page
    assert "parse error" in page


def test_a_taken_harness_metrics_port_starts_the_run_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.metrics import harness_exporter

    real_start = harness_exporter.HarnessExporter.start
    tries = []

    def taken_once(self: harness_exporter.HarnessExporter, host: str, port: int):  # type: ignore[no-untyped-def]
        tries.append(port)
        if len(tries) == 1:
            raise OSError(98, "Address already in use")
        return real_start(self, host, port)

    monkeypatch.setattr(harness_exporter.HarnessExporter, "start", taken_once)
    with LabEnvironment(load_lab(METERED), seed=4) as running:
        assert running.harness_metrics is not None
    assert len(tries) == 2  # the whole start again, on new ports
