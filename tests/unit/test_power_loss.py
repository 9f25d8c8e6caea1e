"""Power loss: after a service wrote files from Python and died, each file is put back as it
was at its last fsync (the service's half journals, the harness's half reverts)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.crashpoints import service_env
from harness.crashpoints.durability import revert_to_durable


def run_service(run_dir: Path, state: Path, code: str) -> None:
    """Run `code` as the service `svc` would run, with the hooks on its path; it then dies."""
    env = {**os.environ, **service_env(run_dir, "svc"), "STATE_DIR": str(state)}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, check=True, cwd=state, timeout=30
    )


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state" / "svc"
    state.mkdir(parents=True)
    return tmp_path, state


def test_what_was_appended_after_the_last_fsync_is_lost(dirs: tuple[Path, Path]) -> None:
    run_dir, state = dirs
    run_service(
        run_dir,
        state,
        """
        import os
        with open("log", "ab") as log:
            log.write(b"one\\n"); log.flush(); os.fsync(log.fileno())
            log.write(b"two\\n"); log.flush(); os.fsync(log.fileno())
            log.write(b"three\\n"); log.flush()  # acknowledged, never synced
        """,
    )
    assert (state / "log").read_bytes() == b"one\ntwo\nthree\n"  # a kill -9 keeps it all
    lost = revert_to_durable(run_dir, "svc")
    assert (state / "log").read_bytes() == b"one\ntwo\n"
    assert "log back to its last fsync (8 bytes)" in str(lost)


def test_a_file_never_synced_is_gone_and_an_untouched_one_stays(dirs: tuple[Path, Path]) -> None:
    run_dir, state = dirs
    (state / "before").write_text("from an earlier life")
    run_service(
        run_dir,
        state,
        """
        from pathlib import Path
        Path("data.json").write_text('{"a": 1}')
        print(Path("before").read_text())
        """,
    )
    revert_to_durable(run_dir, "svc")
    assert not (state / "data.json").exists()
    assert (state / "before").read_text() == "from an earlier life"


def test_a_rewrite_in_place_goes_back_to_the_synced_content(dirs: tuple[Path, Path]) -> None:
    run_dir, state = dirs
    (state / "data").write_text("old and durable")
    run_service(
        run_dir,
        state,
        """
        with open("data", "w") as data:
            data.write("new, never synced")
        """,
    )
    revert_to_durable(run_dir, "svc")
    assert (state / "data").read_text() == "old and durable"


def test_a_rename_carries_the_synced_state_of_its_source(dirs: tuple[Path, Path]) -> None:
    run_dir, state = dirs
    run_service(
        run_dir,
        state,
        """
        import os
        fd = os.open("a.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, b"synced before the rename"); os.fsync(fd); os.close(fd)
        os.replace("a.tmp", "a")
        with open("b.tmp", "w") as b:
            b.write("renamed without an fsync")
        os.rename("b.tmp", "b")
        with open("a", "ab") as a:
            a.write(b" and more")  # not synced
        """,
    )
    revert_to_durable(run_dir, "svc")
    assert (state / "a").read_bytes() == b"synced before the rename"
    assert not (state / "b").exists()
    assert sorted(p.name for p in state.iterdir()) == ["a"]


def test_after_a_revert_the_next_life_starts_from_what_is_on_disk(dirs: tuple[Path, Path]) -> None:
    run_dir, state = dirs
    write = """
        import os, sys
        with open("log", "ab") as log:
            log.write(sys.argv[1].encode()); log.flush(); os.fsync(log.fileno())
            log.write(b"+lost")
        """
    env = {**os.environ, **service_env(run_dir, "svc"), "STATE_DIR": str(state)}
    for word in ("first", "second"):
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(write), word],
            env=env,
            check=True,
            cwd=state,
            timeout=30,
        )
        revert_to_durable(run_dir, "svc")
    assert (state / "log").read_bytes() == b"firstsecond"
