"""Find, or fetch, the real Prometheus server (and promtool) a lab that needs metrics runs.

Order: `$CHAOSLAB_PROMETHEUS` (the server; promtool beside it), the per-user cache (keyed by
where the copy came from and its version), then `prometheus` on PATH.

Getting one, fastest first: Debian's package of Prometheus (a download and an unpack, about a
second, on any machine with apt), else a build from its Go module (8-12 minutes on 2 cores
the first time: `make setup` does it only when asked, a lab does it the first time it needs
one, saying so). Both speak the same HTTP API, rule files and PromQL the checks use.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness._errors import SetupError
from harness.tools import cache_root, place_binary

DEBIAN_PACKAGE = "prometheus"
DEBIAN_VERSION = "2.42.0+ds-5+deb12u1"  # Debian 12's; any Debian package of 2.40+ works too
GO_MODULE = "github.com/prometheus/prometheus"
GO_VERSION = "v0.316.0"  # Prometheus 3.16.0
COMMANDS = ("prometheus", "promtool")
OLDEST = (2, 40)  # the oldest release whose API and rule syntax the labs were checked against


@dataclass(frozen=True)
class Prometheus:
    """A Prometheus server binary and the promtool of the same release."""

    server: Path
    promtool: Path
    version: str


def cached_dir(source: str) -> Path:
    """Where a copy from `source` ("debian" or "go") is kept."""
    version = DEBIAN_VERSION if source == "debian" else GO_VERSION
    return cache_root() / "prometheus" / f"{source}-{version}"


def binary_version(binary: Path) -> str | None:
    """The release a prometheus or promtool binary reports, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return ".".join(match.groups()) if match else None


def supported(version: str | None) -> bool:
    if version is None:
        return False
    major, minor, _ = (int(x) for x in version.split("."))
    return (major, minor) >= OLDEST


def _pair(server: Path) -> Prometheus | None:
    """The server and the promtool beside it (or on PATH), if both run and are supported."""
    version = binary_version(server)
    if not supported(version):
        return None
    promtool = server.with_name("promtool")
    if not promtool.is_file():
        found = shutil.which("promtool")
        promtool = Path(found) if found else promtool
    if binary_version(promtool) is None:
        return None
    assert version is not None
    return Prometheus(server, promtool, version)


def find_prometheus() -> Prometheus | None:
    """The Prometheus to run, if one is here; a bad `$CHAOSLAB_PROMETHEUS` is a SetupError."""
    configured = os.environ.get("CHAOSLAB_PROMETHEUS")
    if configured:
        found = _pair(Path(configured))
        if found is None:
            raise SetupError(
                f"CHAOSLAB_PROMETHEUS={configured} is not a working Prometheus "
                f"{OLDEST[0]}.{OLDEST[1]}+ with promtool beside it (or on PATH).\n"
                "  Fix: unset it to use the one chaoslab fetches, or point it at one."
            )
        return found
    for source in ("debian", "go"):
        server = cached_dir(source) / "prometheus"
        if server.is_file() and os.access(server, os.X_OK):
            found = _pair(server)
            if found is not None:
                return found
    on_path = shutil.which("prometheus")
    return _pair(Path(on_path)) if on_path else None


def install_prometheus(*, build: bool = True) -> Prometheus:
    """Make Prometheus available: reuse one, else unpack Debian's package, else (with
    `build`) build it from its Go module. A SetupError says what to do when none works."""
    found = find_prometheus()
    if found is not None:
        return found
    problems = []
    try:
        return _from_debian()
    except SetupError as exc:
        problems.append(str(exc))
    if build:
        try:
            return _from_go()
        except SetupError as exc:
            problems.append(str(exc))
    else:
        problems.append("a build from its Go module was not asked for")
    raise SetupError(
        "this lab needs Prometheus, and none could be had:\n  - "
        + "\n  - ".join(p.replace("\n", "\n    ") for p in problems)
        + "\n  Fix: install Prometheus 2.40+ (prometheus and promtool on PATH), or install Go "
        "1.22+ and run 'chaoslab setup --prometheus', or set CHAOSLAB_PROMETHEUS."
    )


def _from_debian() -> Prometheus:
    apt, dpkg = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt is None or dpkg is None:
        raise SetupError("Debian's package: no apt-get and dpkg-deb here")
    target = cached_dir("debian")
    with tempfile.TemporaryDirectory(prefix="chaoslab-prometheus-") as work:
        fetched = _run(
            [apt, "download", f"{DEBIAN_PACKAGE}={DEBIAN_VERSION}"], cwd=work, timeout=300
        )
        packages = list(Path(work).glob("*.deb"))
        if fetched.returncode != 0 or not packages:
            raise SetupError(
                f"Debian's package: 'apt-get download {DEBIAN_PACKAGE}={DEBIAN_VERSION}' "
                f"failed: {_last_line(fetched.stderr)}"
            )
        unpacked = Path(work) / "root"
        if _run([dpkg, "-x", str(packages[0]), str(unpacked)], timeout=120).returncode != 0:
            raise SetupError(f"Debian's package: 'dpkg-deb -x {packages[0].name}' failed")
        target.mkdir(parents=True, exist_ok=True)
        for command in COMMANDS:
            place_binary(unpacked / "usr" / "bin" / command, target / command)
    return _installed(target, "Debian's package")


def _from_go() -> Prometheus:
    go = shutil.which("go")
    if go is None:
        raise SetupError("its Go module: Go is not installed")
    target = cached_dir("go")
    print(
        f"chaoslab: building Prometheus {GO_VERSION} from its Go module, once for this "
        "machine (8-12 minutes on 2 cores)...",
        file=sys.stderr,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="chaoslab-gobin-") as gobin:
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
        for command in COMMANDS:
            package = f"{GO_MODULE}/cmd/{command}@{GO_VERSION}"
            built = _run([go, "install", "-ldflags", "-s -w", package], env=env, timeout=3600)
            if built.returncode != 0:
                raise SetupError(
                    f"its Go module: 'go install {package}' failed: {_last_line(built.stderr)}"
                )
        target.mkdir(parents=True, exist_ok=True)
        for command in COMMANDS:
            place_binary(Path(gobin) / command, target / command)
    return _installed(target, "the Go build")


def _installed(target: Path, source: str) -> Prometheus:
    found = _pair(target / "prometheus")
    if found is None:
        raise SetupError(f"{source}: the Prometheus it gave ({target}) does not run")
    return found


def _run(
    argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"'{' '.join(argv)}' took more than {timeout:.0f} s") from exc
    except OSError as exc:
        raise SetupError(f"'{argv[0]}' could not run: {exc}") from exc


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_rules(program: Prometheus, rule_file: Path) -> str | None:
    """What `promtool check rules` finds wrong with a rule file, or None when it is valid."""
    try:
        done = subprocess.run(
            [str(program.promtool), "check", "rules", str(rule_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"promtool could not check it: {exc}"
    if done.returncode == 0:
        return None
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return "\n".join(said[-8:]) or f"promtool check rules exited with {done.returncode}"
