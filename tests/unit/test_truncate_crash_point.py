"""The truncation crash point fires where a rewrite in place is torn, and nowhere else."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harness.crashpoints import CrashPoint, service_env


def armed_service(tmp_path: Path, code: str) -> int:
    state = tmp_path / "state" / "svc"
    state.mkdir(parents=True, exist_ok=True)
    (state / "log").write_text("durable records\n")
    point = CrashPoint(tmp_path, "svc", 1, died=lambda: True, kind="truncates")
    point.arm()
    env = {**os.environ, **service_env(tmp_path, "svc"), "STATE_DIR": str(state)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=state, timeout=30, check=False
    )
    return done.returncode


def test_emptying_a_file_with_data_crashes_before_the_rewrite(tmp_path: Path) -> None:
    code = """
        with open("log", "w") as log:
            log.write("rewritten")
        """
    assert armed_service(tmp_path, code) == 137
    assert (tmp_path / "state" / "svc" / "log").read_text() == ""


def test_a_new_file_renamed_over_the_old_one_never_fires(tmp_path: Path) -> None:
    code = """
        import os
        with open("log.tmp", "w") as new:
            new.write("rewritten")
            new.flush()
            os.fsync(new.fileno())
        os.replace("log.tmp", "log")
        with open("log", "a") as log:
            log.write(" and appended")
        """
    assert armed_service(tmp_path, code) == 0
    assert (tmp_path / "state" / "svc" / "log").read_text() == "rewritten and appended"
