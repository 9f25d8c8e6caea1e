"""harness.tools: finding toxiproxy-server, with no binary ever run (subprocess is faked)."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from harness import tools
from harness._errors import SetupError


class FakeRun:
    """Stands in for subprocess.run: answers `binary -version` as told, records the argv."""

    def __init__(self, stdout="", stderr="", error=None):
        self.stdout, self.stderr, self.error = stdout, stderr, error
        self.argvs = []

    def __call__(self, argv, **kwargs):
        self.argvs.append(argv)
        if self.error is not None:
            raise self.error
        return subprocess.CompletedProcess(argv, 0, self.stdout, self.stderr)


@pytest.fixture
def nothing_installed(monkeypatch, tmp_path):
    """An empty PATH, an empty cache, no CHAOSLAB_TOXIPROXY, and no real process started."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CHAOSLAB_TOXIPROXY", raising=False)
    fake = FakeRun(error=AssertionError("no binary should run in this test"))
    monkeypatch.setattr(tools.subprocess, "run", fake)
    return empty_bin


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_nothing_found_says_make_setup(nothing_installed):
    with pytest.raises(SetupError) as caught:
        tools.find_toxiproxy()

    text = str(caught.value)
    assert "toxiproxy-server not found" in text
    assert "make setup" in text
    assert str(tools.cached_toxiproxy()) in text
    assert "PATH" in text


def test_the_cached_binary_is_used_first(nothing_installed, tmp_path):
    cached = _executable(
        tmp_path / "cache" / "chaoslab" / "toxiproxy" / "2.12.0" / "toxiproxy-server"
    )
    _executable(nothing_installed / "toxiproxy-server")

    assert tools.find_toxiproxy() == cached


def test_a_cached_file_that_is_not_executable_is_skipped(nothing_installed):
    cached = tools.cached_toxiproxy()
    cached.parent.mkdir(parents=True)
    cached.write_text("half a download")

    with pytest.raises(SetupError, match="make setup"):
        tools.find_toxiproxy()


def test_a_compatible_binary_on_path_is_used(nothing_installed, monkeypatch):
    on_path = _executable(nothing_installed / "toxiproxy-server")
    monkeypatch.setattr(tools.subprocess, "run", FakeRun(stdout="toxiproxy-server version 2.9.0"))

    assert tools.find_toxiproxy() == on_path


def test_an_old_binary_on_path_is_not_used(nothing_installed, monkeypatch):
    _executable(nothing_installed / "toxiproxy-server")
    monkeypatch.setattr(tools.subprocess, "run", FakeRun(stdout="toxiproxy-server version 1.2.1"))

    with pytest.raises(SetupError, match="make setup"):
        tools.find_toxiproxy()


def test_chaoslab_toxiproxy_pointing_at_a_non_binary_is_a_clear_error(
    nothing_installed, monkeypatch, tmp_path
):
    script = tmp_path / "notes.txt"
    script.write_text("not a program\n")
    script.chmod(0o755)
    monkeypatch.setenv("CHAOSLAB_TOXIPROXY", str(script))
    # What exec of a text file without a #! line does.
    fake = FakeRun(error=OSError(errno.ENOEXEC, "Exec format error"))
    monkeypatch.setattr(tools.subprocess, "run", fake)

    with pytest.raises(SetupError) as caught:
        tools.find_toxiproxy()

    assert fake.argvs == [[str(script), "-version"]]
    text = str(caught.value)
    assert f"CHAOSLAB_TOXIPROXY={script} is not a working toxiproxy-server 2.x" in text
    assert "Fix: unset it" in text


def test_chaoslab_toxiproxy_pointing_at_another_program_is_a_clear_error(
    nothing_installed, monkeypatch
):
    monkeypatch.setenv("CHAOSLAB_TOXIPROXY", "/usr/bin/env")
    monkeypatch.setattr(tools.subprocess, "run", FakeRun(stderr="env: invalid option -- 'v'"))

    with pytest.raises(SetupError, match="CHAOSLAB_TOXIPROXY=/usr/bin/env is not a working"):
        tools.find_toxiproxy()


def test_chaoslab_toxiproxy_wins_over_the_cache(nothing_installed, monkeypatch, tmp_path):
    _executable(tools.cached_toxiproxy())
    mine = _executable(tmp_path / "mine" / "toxiproxy-server")
    monkeypatch.setenv("CHAOSLAB_TOXIPROXY", str(mine))
    monkeypatch.setattr(tools.subprocess, "run", FakeRun(stdout="toxiproxy-server 2.12.0\n"))

    assert tools.find_toxiproxy() == mine


def test_cache_root_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tools.cache_root() == tmp_path / "chaoslab"
    assert tools.cached_toxiproxy("2.9.0") == (
        tmp_path / "chaoslab" / "toxiproxy" / "2.9.0" / "toxiproxy-server"
    )


# -- binary_version and compatible ------------------------------------------------------------
@pytest.mark.parametrize(
    ("fake", "version"),
    [
        (FakeRun(stdout="toxiproxy-server version 2.12.0\n"), "2.12.0"),
        (FakeRun(stderr="toxiproxy-server version 2.5.0 (linux/amd64)"), "2.5.0"),
        (FakeRun(stdout="usage: something else"), None),
        (FakeRun(error=FileNotFoundError(errno.ENOENT, "No such file")), None),
        (FakeRun(error=subprocess.TimeoutExpired(["x"], 10)), None),
    ],
    ids=["stdout", "stderr", "no-version", "missing", "hangs"],
)
def test_binary_version(monkeypatch, fake, version):
    monkeypatch.setattr(tools.subprocess, "run", fake)
    assert tools.binary_version(Path("/opt/toxiproxy-server")) == version


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("2.12.0", True),
        ("2.5.0", True),
        ("2.4.9", False),
        ("1.2.1", False),
        ("3.0.0", False),
        (None, False),
    ],
)
def test_compatible_means_v2_from_2_5_on(version, ok):
    assert tools.compatible(version) is ok


def test_the_pinned_version_is_compatible():
    assert tools.compatible(tools.TOXIPROXY_VERSION)
