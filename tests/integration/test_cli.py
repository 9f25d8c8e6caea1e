"""The CLI as a learner meets it: clear errors for bad input, the catalogue, hints, verdicts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.tools import find_toxiproxy
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration


def chaoslab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chaoslab_command(*args),
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unknown_lab_suggests_the_closest_name() -> None:
    result = chaoslab("check", "idempotency-kyes")
    assert result.returncode == 2
    assert "unknown lab 'idempotency-kyes'" in result.stderr
    assert "Did you mean 'idempotency-keys'" in result.stderr


def test_malformed_lab_file_names_file_key_and_fix(tmp_path: Path) -> None:
    lab = tmp_path / "broken"
    shutil.copytree(FIXTURE_LABS / "ping", lab)
    manifest = lab / "lab.toml"
    manifest.write_text(manifest.read_text().replace("chapter = 0", 'chapter = "zero"'))
    result = chaoslab("check", str(lab))
    assert result.returncode == 2
    assert str(manifest) in result.stderr
    assert "[lab.chapter]" in result.stderr
    assert "Fix:" in result.stderr


def test_missing_toxiproxy_binary_says_what_to_do(tmp_path: Path) -> None:
    result = chaoslab(
        "check", str(FIXTURE_LABS / "ping"), CHAOSLAB_TOXIPROXY=str(tmp_path / "nope")
    )
    assert result.returncode == 2
    assert "CHAOSLAB_TOXIPROXY" in result.stdout + result.stderr
    assert "Fix:" in result.stdout + result.stderr


def test_a_service_that_crashes_at_start_shows_its_log(tmp_path: Path) -> None:
    lab = tmp_path / "crashing"
    shutil.copytree(FIXTURE_LABS / "ping", lab)
    (lab / "services" / "front.py").write_text("raise SystemExit('front: cannot start')\n")
    result = chaoslab("check", str(lab))
    assert result.returncode == 2
    assert "service 'front' exited with code 1 before it was ready" in result.stdout
    assert "front: cannot start" in result.stdout
    assert "Hint:" in result.stdout


def test_check_writes_a_json_verdict_and_replays_a_seed(tmp_path: Path) -> None:
    out = tmp_path / "verdict.json"
    result = chaoslab("check", str(FIXTURE_LABS / "ping"), "--seed", "123", "--json", str(out))
    assert result.returncode == 0, result.stdout
    verdict = json.loads(out.read_text())
    assert verdict["seed"] == 123
    assert verdict["ok"] is True
    assert [c["outcome"] for c in verdict["checks"]] == ["passed"] * 3


def test_a_failed_check_tells_expected_observed_and_fault() -> None:
    result = chaoslab("check", str(FIXTURE_LABS / "ping"), PING_LAB_FAIL="1")
    assert result.returncode == 1
    assert "FAIL 2. fails when asked" in result.stdout
    assert "expected: no failure" in result.stdout
    assert "during: latency 300 ms on front -> back (downstream)" in result.stdout
    assert "replay with --seed" in result.stdout


def test_list_and_hints_in_steps(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path), "CHAOSLAB_TOXIPROXY": str(find_toxiproxy())}
    listing = chaoslab("list", **env)
    assert listing.returncode == 0
    assert "idempotency-keys" in listing.stdout
    assert "not started" in listing.stdout
    first = chaoslab("hint", "idempotency-keys", **env)
    second = chaoslab("hint", "idempotency-keys", **env)
    assert first.stdout.startswith("Hint 1 of")
    assert second.stdout.startswith("Hint 2 of")


def test_doctor_reports_the_toolchain() -> None:
    result = chaoslab("doctor")
    assert result.returncode == 0, result.stdout
    assert "toxiproxy   2.12.0" in result.stdout
