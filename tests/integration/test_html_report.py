"""`chaoslab check --report`: the HTML report of a real run (the fixture lab, with a check that
drives traffic through a fault), loaded in a real headless Chromium: the plot's points and
fault windows are drawn, and a screenshot is taken."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.tools import find_toxiproxy
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration

TRAFFIC_CHECK = """
import httpx

from harness import CheckResult, expect


def test_4_pings_under_latency(lab, faults, traffic):
    def ping(client):
        with client.op("ping") as op:
            if client.http.get(f"{lab.url('front')}/ping").status_code != 200:
                op.fail("not 200")

    with faults.latency("front -> back", 150):
        history = traffic.run(ping, clients=3, iterations=4)
    traffic.run(ping, clients=2, iterations=3)
    expect(CheckResult("pings", "answers", f"{len(history)} pings", []), during=faults.timeline)
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium on this machine: the report is not loaded in a browser")


def browse(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            "--virtual-time-budget=8000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_report_draws_every_operation_and_fault_window(tmp_path: Path) -> None:
    lab = tmp_path / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", lab, ignore=shutil.ignore_patterns("__pycache__"))
    (lab / "tests" / "test_traffic.py").write_text(TRAFFIC_CHECK)
    env = child_env(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        CHAOSLAB_TOXIPROXY=str(find_toxiproxy()),
        PING_LAB_FAIL="1",
    )
    run = subprocess.run(
        chaoslab_command("check", str(lab), "--report"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    report = Path(run.stdout.rsplit("Report: ", 1)[1].strip())
    assert report == tmp_path / "cache" / "chaoslab" / "logs" / "ping" / "report.html"
    # `chaoslab report` writes it again from the last run's files.
    again = subprocess.run(
        chaoslab_command("report", str(lab)), env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr
    assert str(report) in again.stdout

    dom = browse(report.as_uri(), "--dump-dom").stdout
    assert 'id="timeline"' in dom
    assert "main-svg" in dom  # plotly drew the figure
    points = dom.count('class="point"')
    assert points >= 18, f"{points} points drawn; expected one per ping (18)"
    assert dom.count('class="shape-group"') >= 2  # the two latency windows, shaded
    assert "answered (18)" in dom
    assert "3 of 4 checks pass" in dom
    assert "FAILED test_2_fails_when_asked" in dom
    assert "latency 150 ms on front -&gt; back" in dom

    shot = tmp_path / "report.png"
    browse(report.as_uri(), f"--screenshot={shot}")
    assert shot.stat().st_size > 30_000  # a drawn page, not a blank one
