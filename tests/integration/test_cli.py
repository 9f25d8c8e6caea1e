"""The CLI as a learner meets it: clear errors for bad input, the catalogue, hints, verdicts."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.runs import labelled_processes
from harness.tools import find_toxiproxy
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env, run_owned_by

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


TEARS_ITS_DATABASE = """
from harness import CheckResult, expect


def test_1_front_survives_a_crash(lab, faults):
    faults.kill("front")
    (lab.state_dir("front") / "front.db").write_bytes(b"torn" * 100)
    expect(CheckResult("front survives", "-", "-", []))


def test_2_front_answers(lab):
    expect(CheckResult("front answers", "-", "-", []))
"""


def test_a_learners_service_that_does_not_come_back_fails_the_checks(tmp_path: Path) -> None:
    lab = tmp_path / "torn"
    shutil.copytree(FIXTURE_LABS / "ping", lab, ignore=shutil.ignore_patterns("__pycache__"))
    (lab / "tests" / "test_ping.py").write_text(TEARS_ITS_DATABASE)
    out = tmp_path / "verdict.json"
    result = chaoslab("check", str(lab), "--json", str(out))
    assert result.returncode == 1, result.stdout + result.stderr  # a verdict, not "could not run"
    assert "front (your code) did not start again after the previous check" in result.stdout
    assert "file is not a database" in result.stdout  # its own log says why
    verdict = json.loads(out.read_text())
    assert not verdict["setup_error"]
    assert [c["outcome"] for c in verdict["checks"]] == ["error", "error"]


def test_output_cut_short_by_its_reader_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `chaoslab list | head -1` once head has gone
    try:
        result = subprocess.run(
            chaoslab_command("list"),
            env=child_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr
    assert result.returncode == 128 + signal.SIGPIPE


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


def test_a_passing_check_shows_what_was_observed_against_its_bound() -> None:
    result = chaoslab("check", str(FIXTURE_LABS / "ping"), "--seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if "PASS 1. ping answers" in line)
    assert lines[index + 1].strip() == "200 (expected: 200)"
    assert "All 3 checks pass. Seed 7." in result.stdout


def test_logs_say_which_run_they_are_from_and_its_faults(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path), "CHAOSLAB_TOXIPROXY": str(find_toxiproxy())}
    assert chaoslab("check", str(FIXTURE_LABS / "ping"), "--seed", "11", **env).returncode == 0
    logs = chaoslab("logs", str(FIXTURE_LABS / "ping"), **env)
    assert logs.returncode == 0, logs.stderr
    first = logs.stdout.splitlines()[0]
    assert first.startswith("Logs of the last run of 'ping' (your code): ")
    assert "seed 11, 3 of 3 checks passed." in first
    assert "latency 300 ms on front -> back (downstream) (until" in logs.stdout
    merged = logs.stdout.split("in time order:\n", 1)[1].splitlines()
    on = next(i for i, x in enumerate(merged) if "FAULT ON" in x)
    off = next(i for i, x in enumerate(merged) if "FAULT OFF" in x)
    assert on < off
    # The source column is as wide as the widest source (front.requests: its request lines).
    started = re.compile(r"toxiproxy +info: Started proxy \(name checks__front\)")
    assert any(started.search(x) for x in merged[:on])
    assert any(re.search(r"front\.requests +GET /ping -> 200", x) for x in merged)
    toxiproxy = (tmp_path / "chaoslab" / "logs" / "ping" / "toxiproxy.log").read_text()
    assert '"level":"debug"' not in toxiproxy  # info level: proxies and toxics, not API calls
    assert "Started proxy" in toxiproxy


def test_list_and_hints_in_steps(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path), "CHAOSLAB_TOXIPROXY": str(find_toxiproxy())}
    listing = chaoslab("list", **env)
    assert listing.returncode == 0
    assert "idempotency-keys" in listing.stdout
    assert "never run" in listing.stdout
    first = chaoslab("hint", "idempotency-keys", **env)
    second = chaoslab("hint", "idempotency-keys", **env)
    assert first.stdout.startswith("Hint 1 of")
    assert second.stdout.startswith("Hint 2 of")


def test_doctor_reports_the_toolchain() -> None:
    result = chaoslab("doctor")
    assert result.returncode == 0, result.stdout
    assert "toxiproxy   2.12.0" in result.stdout


def broken_copy(tmp_path: Path, rel: str, content: str) -> Path:
    lab = tmp_path / "labs" / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", lab)
    (lab / rel).write_text(content)
    return lab


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("import os\n\ndef test_1(:\n", "SyntaxError"),
        ("import no_such_module\n", "No module named 'no_such_module'"),
    ],
    ids=["syntax-error", "import-error"],
)
def test_checks_that_do_not_load_are_a_setup_error_with_file_and_line(
    tmp_path: Path, content: str, error: str
) -> None:
    lab = broken_copy(tmp_path, "tests/test_ping.py", content)
    out = tmp_path / "verdict.json"
    result = chaoslab("check", str(lab), "--json", str(out))
    assert result.returncode == 2, result.stdout + result.stderr  # not 130: nobody pressed Ctrl-C
    assert "interrupted" not in result.stderr
    assert "The lab could not run:" in result.stdout
    assert "tests/test_ping.py, line" in result.stdout
    assert error in result.stdout
    verdict = json.loads(out.read_text())
    assert error in verdict["setup_error"]
    assert verdict["ok"] is False


def test_a_missing_checks_folder_is_a_setup_error_not_a_failure(tmp_path: Path) -> None:
    lab = tmp_path / "labs" / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", lab, ignore=shutil.ignore_patterns("tests"))
    result = chaoslab("check", str(lab))
    assert result.returncode == 2
    assert "the lab has no checks" in result.stdout
    assert "0 of 0 checks pass" not in result.stdout
    assert "Stuck?" not in result.stdout


def test_a_bad_pytest_argument_is_a_setup_error_with_pytest_s_reason() -> None:
    result = chaoslab("check", str(FIXTURE_LABS / "ping"), "--", "--colour")
    assert result.returncode == 2
    assert "unrecognized arguments: --colour" in result.stdout
    assert "0 of 0 checks pass" not in result.stdout


def test_json_into_an_unwritable_place_is_refused_before_the_run(tmp_path: Path) -> None:
    result = chaoslab("check", str(FIXTURE_LABS / "ping"), "--json", str(tmp_path / "no" / "v"))
    assert result.returncode == 2
    assert "Running" not in result.stdout  # told before the run, not after losing the verdict
    assert f"the folder {tmp_path / 'no'} does not exist" in result.stderr


def test_one_broken_lab_does_not_hide_the_catalogue(tmp_path: Path) -> None:
    labs = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS / "ping", labs / "ping")
    shutil.copytree(FIXTURE_LABS / "ping", labs / "broken")
    (labs / "broken" / "lab.toml").write_bytes(b'[lab]\ntitle = "caf\xe9"\n')
    env = {
        "CHAOSLAB_LABS": str(labs),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "CHAOSLAB_TOXIPROXY": str(find_toxiproxy()),
    }
    listing = chaoslab("list", **env)
    assert listing.returncode == 2
    assert "Ping through a proxy" in listing.stdout
    assert "broken" in listing.stdout
    assert "BROKEN" in listing.stdout
    assert "not UTF-8 text (byte 0xe9 on line 2)" in listing.stderr
    assert "Traceback" not in listing.stderr
    doctor = chaoslab("doctor", **env)
    assert "labs        1 (ping)" in doctor.stdout
    assert "BROKEN" in doctor.stdout
    check = chaoslab("check", "ping", "--seed", "5", **env)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    "content",
    ["{oops", "[1, 2]", '{"ping": 3}', '{"ping": {"hints": "two"}}', '{"ping": {"ok": 1}}'],
    ids=["not-json", "a-list", "entry-not-an-object", "hints-not-a-number", "ok-not-a-bool"],
)
def test_a_damaged_status_file_counts_as_empty_and_is_rewritten(
    tmp_path: Path, content: str
) -> None:
    status = tmp_path / "chaoslab" / "status.json"
    status.parent.mkdir(parents=True)
    status.write_text(content)
    env = {
        "CHAOSLAB_LABS": str(FIXTURE_LABS),
        "XDG_CACHE_HOME": str(tmp_path),
        "CHAOSLAB_TOXIPROXY": str(find_toxiproxy()),
    }
    listing = chaoslab("list", **env)
    assert listing.returncode == 0, listing.stderr
    assert "never run" in listing.stdout
    assert "is not a status file chaoslab can read" in listing.stderr
    hint = chaoslab("hint", "ping", **env)
    assert hint.returncode == 0, hint.stderr
    assert hint.stdout.startswith("Hint 1 of 2")
    assert json.loads(status.read_text()) == {
        str(FIXTURE_LABS / "ping"): {"slug": "ping", "hints": 1}
    }
    assert sorted(p.name for p in status.parent.iterdir()) == ["status.json"]  # no temp file
    again = chaoslab("hint", "ping", **env)
    assert again.stdout.startswith("Hint 2 of 2")
    assert again.stderr == ""


def test_sigterm_exits_143_after_the_teardown(tmp_path: Path) -> None:
    child = subprocess.Popen(
        chaoslab_command("check", str(FIXTURE_LABS / "ping")),
        env=child_env(PING_LAB_HANG="30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        run_id = None
        while time.monotonic() < deadline and run_id is None:
            run_id = run_owned_by(child.pid)
            time.sleep(0.05)
        assert run_id is not None, "the run did not start"
        while time.monotonic() < deadline and len(processes_of(run_id)) < 3:
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        output = child.communicate(timeout=30)[0]
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 143, output  # 128 + SIGTERM, as a shell reports it; not 130
    assert "interrupted by SIGTERM" in output
    assert processes_of(run_id) == []


def processes_of(run_id: str) -> list[int]:
    return [pid for pid, owner in labelled_processes() if owner == run_id]


def on_a_terminal(*args: str, **env: str) -> str:
    """What `chaoslab` prints when its output is a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        chaoslab_command(*args), env=child_env(**env), stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_shows_progress_and_colour_unless_no_color() -> None:
    shown = on_a_terminal("check", str(FIXTURE_LABS / "ping"))
    assert "\r\x1b[K  ... 1. ping answers (" in shown  # the progress line, rewritten in place
    assert "\x1b[32mPASS\x1b[0m" in shown
    plain = on_a_terminal("check", str(FIXTURE_LABS / "ping"), NO_COLOR="1")
    assert "\x1b[32m" not in plain
    assert "PASS 1. ping answers" in plain


def test_a_copied_lab_is_named_by_its_folder_in_the_hints(tmp_path: Path) -> None:
    copy = tmp_path / "my-ping"
    shutil.copytree(FIXTURE_LABS / "ping", copy, ignore=shutil.ignore_patterns("__pycache__"))
    result = chaoslab("check", str(copy), PING_LAB_FAIL="1")
    assert result.returncode == 1
    assert f"'chaoslab hint {copy}'" in result.stdout
    assert chaoslab("hint", str(copy)).returncode == 0


def test_setup_builds_jaeger_only_for_a_catalogue_with_traces(tmp_path: Path) -> None:
    """Every grading job of an exported repository runs setup: a catalogue without a lab that
    sends traces must not pay minutes for a Jaeger it never starts."""
    plain = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS / "ping", plain / "ping")
    without = chaoslab("setup", CHAOSLAB_LABS=str(plain))
    assert without.returncode == 0, without.stderr
    assert "jaeger: no lab here sends traces; not built" in without.stdout

    with_traces = chaoslab("setup", CHAOSLAB_LABS=str(FIXTURE_LABS))  # `traced` sends traces
    assert with_traces.returncode == 0, with_traces.stderr
    assert "jaeger ready:" in with_traces.stdout
