"""`chaoslab up` keeps a lab running with its ports printed; `chaoslab down` stops it clean."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.tools import find_toxiproxy, install_toxiproxy_cli
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration


def test_up_prints_ports_and_down_stops_everything(tmp_path: Path) -> None:
    env = child_env(XDG_CACHE_HOME=str(tmp_path), CHAOSLAB_TOXIPROXY=str(find_toxiproxy()))
    up = subprocess.Popen(
        chaoslab_command("up", str(FIXTURE_LABS / "ping")),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert up.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        lines.append(line)
        if "Ctrl-C here" in line or not line:
            break
    text = "".join(lines)
    proxy = re.search(r"proxy\s+checks -> front\s+(http://\S+)", text)
    assert proxy, text
    assert httpx.get(f"{proxy.group(1)}/ping", timeout=5).status_code == 200
    logs = re.search(r"logs\s+(\S+)", text)
    assert logs, text
    up_json = tmp_path / "chaoslab" / "up.json"
    deadline = time.monotonic() + 10
    while not up_json.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    record = json.loads(up_json.read_text())
    assert record["pid"] == up.pid
    assert record["start"]  # with its start time, so a recycled pid is never signalled

    stopped = subprocess.run(
        chaoslab_command("down"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert stopped.stdout.strip() == "'ping' is down."
    rest = up.communicate(timeout=30)[0]
    assert up.returncode == 0, rest
    assert "nothing it started is left running" in rest
    assert not Path(logs.group(1)).exists()  # the run's folder is gone
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{proxy.group(1)}/ping", timeout=2)


# A stand-in for `chaoslab up` that writes its own record the way `up` does.
OWNER = """\
import json, os, signal, sys, time
from harness.runs import process_start_time
if sys.argv[2] == "ignore-sigterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
me = os.getpid()
record = {"pid": me, "start": process_start_time(me), "lab": "stubborn"}
with open(sys.argv[1], "w") as out:
    json.dump(record, out)
print("ready", flush=True)
time.sleep(120)
"""


def start_owner(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    record = tmp_path / "chaoslab" / "up.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(record), mode],
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "ready"
    return owner


def down(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chaoslab_command("down", *args),
        env=child_env(XDG_CACHE_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_down_kills_an_owner_that_ignores_sigterm_and_says_so(tmp_path: Path) -> None:
    owner = start_owner(tmp_path, "ignore-sigterm")
    try:
        result = down(tmp_path, "--grace", "1")
        assert result.returncode == 0, result.stderr
        assert "did not stop within 1 s of SIGTERM; sending SIGKILL" in result.stdout
        assert "'stubborn' is down (killed" in result.stdout
        assert owner.wait(timeout=10) == -signal.SIGKILL  # really stopped when 'down' says so
        assert not (tmp_path / "chaoslab" / "up.json").exists()
    finally:
        owner.kill()
        owner.wait()


def test_down_stops_a_cooperative_owner_with_sigterm_alone(tmp_path: Path) -> None:
    owner = start_owner(tmp_path, "default")
    try:
        result = down(tmp_path, "--grace", "10")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "'stubborn' is down."
        assert owner.wait(timeout=10) == -signal.SIGTERM
    finally:
        owner.kill()
        owner.wait()


def test_down_never_signals_a_recycled_pid(tmp_path: Path) -> None:
    # The pid of the record now belongs to another program (its start time differs).
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        record = tmp_path / "chaoslab" / "up.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"pid": bystander.pid, "start": "1", "lab": "ping"}))
        result = down(tmp_path)
        assert result.returncode == 0, result.stderr
        assert "stale" in result.stdout
        assert "signalled nothing" in result.stdout
        assert not record.exists()
        time.sleep(0.2)
        assert bystander.poll() is None, "a process that is not the lab's was signalled"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"pid": "12"}', '{"pid": 1}'],
    ids=["not-json", "a-list", "pid-not-a-number", "pid-without-start-time"],
)
def test_down_with_a_bad_record_removes_it_and_signals_nothing(
    tmp_path: Path, content: str
) -> None:
    record = tmp_path / "chaoslab" / "up.json"
    record.parent.mkdir(parents=True)
    record.write_text(content)
    result = down(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No lab is up")
    assert "Traceback" not in result.stdout + result.stderr
    assert not record.exists()


def test_the_printed_toxiproxy_commands_break_and_heal_the_running_lab(tmp_path: Path) -> None:
    cli = install_toxiproxy_cli()
    if cli is None:
        pytest.skip("Go is not installed: toxiproxy-cli cannot be built")
    env = child_env(
        XDG_CACHE_HOME=str(tmp_path),
        CHAOSLAB_TOXIPROXY=str(find_toxiproxy()),
        PATH=f"{cli.parent}{os.pathsep}{os.environ['PATH']}",
    )
    up = subprocess.Popen(
        chaoslab_command("up", str(FIXTURE_LABS / "ping")),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            lines.append(line)
            if "Ctrl-C here" in line or not line:
                break
        text = "".join(lines)
        proxy = re.search(r"proxy\s+checks -> front\s+(http://\S+)", text)
        assert proxy, text
        commands = [x.strip() for x in text.split("Break it by hand", 1)[1].splitlines()[1:6]]
        cli_add, cli_remove, py_add, py_remove = commands[1], commands[2], commands[3], commands[4]
        assert cli_add.startswith(f"{cli} -h http://")
        assert "from toxiproxy import Toxiproxy" in py_add

        def ping_ms() -> float:
            start = time.monotonic()
            assert httpx.get(f"{proxy.group(1)}/ping", timeout=10).status_code == 200
            return (time.monotonic() - start) * 1000

        def run(command: str) -> None:
            done = subprocess.run(
                shlex.split(command),
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr

        assert ping_ms() < 900
        for add, remove in ((cli_add, cli_remove), (py_add, py_remove)):
            run(add)
            assert ping_ms() >= 1000  # the toxic's 1000 ms, on the answer's way back
            run(remove)
            assert ping_ms() < 900
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=60)
