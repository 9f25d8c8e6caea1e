"""`chaoslab up` keeps a lab running with its ports printed; `chaoslab down` stops it clean."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from harness.tools import find_toxiproxy
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

    down = subprocess.run(
        chaoslab_command("down"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "is down" in down.stdout
    rest = up.communicate(timeout=30)[0]
    assert up.returncode == 0, rest
    assert "nothing it started is left running" in rest
    assert not Path(logs.group(1)).exists()  # the run's folder is gone
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{proxy.group(1)}/ping", timeout=2)
