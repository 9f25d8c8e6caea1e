"""harness.metrics.program: finding or fetching Prometheus, with shell scripts standing in for
prometheus, promtool, apt-get, dpkg-deb and go (nothing is downloaded or built)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._errors import SetupError
from harness.metrics import program


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _fake_prometheus(folder: Path, version: str = "2.42.0") -> Path:
    for command in program.COMMANDS:
        _script(folder / command, f'echo "{command}, version {version}+ds (branch: x)"')
    return folder / "prometheus"


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH with only what a test puts in it (and sh), an empty cache."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}:/bin:/usr/bin")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CHAOSLAB_PROMETHEUS", raising=False)
    monkeypatch.setattr(program.shutil, "which", _which_in(path))
    return path


def _which_in(folder: Path):  # type: ignore[no-untyped-def]
    def which(name: str) -> str | None:
        found = folder / name
        return str(found) if found.is_file() else None

    return which


@pytest.mark.parametrize(
    ("version", "ok"),
    [("2.39.1", False), ("2.40.0", True), ("2.42.0", True), ("3.16.0", True), (None, False)],
)
def test_supported_releases(version: str | None, ok: bool) -> None:
    assert program.supported(version) is ok


def test_nothing_here_is_none_not_an_error(bare: Path) -> None:
    assert program.find_prometheus() is None


def test_one_on_path_is_used_with_its_promtool(bare: Path) -> None:
    server = _fake_prometheus(bare)

    found = program.find_prometheus()

    assert found == program.Prometheus(server, bare / "promtool", "2.42.0")


def test_too_old_a_one_on_path_is_not_used(bare: Path) -> None:
    _fake_prometheus(bare, version="2.31.0")

    assert program.find_prometheus() is None


def test_a_bad_override_says_how_to_fix_it(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSLAB_PROMETHEUS", str(_script(bare / "nope", "exit 1")))

    with pytest.raises(SetupError, match=r"is not a working Prometheus(.|\n)*Fix: unset it"):
        program.find_prometheus()


def test_debians_package_is_unpacked_into_the_cache(bare: Path, tmp_path: Path) -> None:
    packaged = tmp_path / "deb"
    _fake_prometheus(packaged / "usr" / "bin")
    _script(bare / "apt-get", f'[ "$2" = "prometheus={program.DEBIAN_VERSION}" ] && touch p.deb')
    _script(bare / "dpkg-deb", f'mkdir -p "$3" && cp -r {packaged}/usr "$3"/')

    found = program.install_prometheus(build=False)

    assert found.server == program.cached_dir("debian") / "prometheus"
    assert found.promtool == program.cached_dir("debian") / "promtool"
    assert program.find_prometheus() == found  # the next run takes it from the cache


def test_the_go_build_says_it_is_long_and_lands_in_the_cache(
    bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _script(
        bare / "go",
        'name=$(basename "${4%@*}"); '
        'printf "#!/bin/sh\\necho $name, version 3.16.0\\n" > "$GOBIN/$name"; '
        'chmod +x "$GOBIN/$name"',
    )

    found = program.install_prometheus()

    assert found.server == program.cached_dir("go") / "prometheus"
    assert found.version == "3.16.0"
    assert "8-12 minutes" in capsys.readouterr().err


def test_none_to_be_had_lists_why_and_what_to_do(bare: Path) -> None:
    _script(bare / "apt-get", "echo 'E: Unable to locate package' >&2; exit 100")
    _script(bare / "dpkg-deb", "exit 1")

    with pytest.raises(SetupError) as caught:
        program.install_prometheus()

    text = str(caught.value)
    assert "E: Unable to locate package" in text
    assert "Go is not installed" in text
    assert "Fix: install Prometheus 2.40+" in text
    assert "chaoslab setup --prometheus" in text
