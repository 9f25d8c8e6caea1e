"""Find, or build from its Go module, the real `toxiproxy-server` the harness drives.

Order: `$CHAOSLAB_TOXIPROXY`, the per-user cache (keyed by version, so a second setup takes
seconds), then a compatible `toxiproxy-server` on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness._errors import SetupError

TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"


def cache_root() -> Path:
    """The per-user cache folder (`$XDG_CACHE_HOME/chaoslab`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chaoslab"


def cached_toxiproxy(version: str = TOXIPROXY_VERSION) -> Path:
    return cache_root() / "toxiproxy" / version / "toxiproxy-server"


def binary_version(binary: Path) -> str | None:
    """The version a toxiproxy-server binary reports, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+\.\d+\.\d+)", out.stdout + out.stderr)
    return match.group(1) if match else None


def compatible(version: str | None) -> bool:
    """The harness speaks the v2 HTTP API; any 2.x from 2.5 on has every toxic it uses."""
    if version is None:
        return False
    major, minor, _ = (int(x) for x in version.split("."))
    return major == 2 and minor >= 5


def find_toxiproxy() -> Path:
    """The toxiproxy-server to run, or a SetupError that says how to get one."""
    configured = os.environ.get("CHAOSLAB_TOXIPROXY")
    if configured:
        path = Path(configured)
        if not compatible(binary_version(path)):
            raise SetupError(
                f"CHAOSLAB_TOXIPROXY={configured} is not a working toxiproxy-server 2.x.\n"
                "  Fix: unset it to use the one 'make setup' builds, or point it at a 2.x binary."
            )
        return path
    cached = cached_toxiproxy()
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        version = binary_version(Path(on_path))
        if compatible(version):
            return Path(on_path)
        raise SetupError(
            f"the toxiproxy-server on PATH ({on_path}) reports version {version or 'unknown'};"
            " chaoslab needs 2.5 or newer.\n  Fix: run 'make setup' (it builds "
            f"{TOXIPROXY_VERSION} into {cached}), or upgrade the one on PATH."
        )
    raise SetupError(
        f"toxiproxy-server not found (looked in $CHAOSLAB_TOXIPROXY, {cached} and PATH).\n"
        "  Fix: run 'make setup' (it builds Toxiproxy from its Go module; needs Go 1.22+),\n"
        "  or install toxiproxy-server 2.x from your package manager and put it on PATH."
    )


def install_toxiproxy(version: str = TOXIPROXY_VERSION) -> Path:
    """Make a toxiproxy-server available: reuse one, else build it with `go install`."""
    cached = cached_toxiproxy(version)
    if cached.is_file() and binary_version(cached) == version:
        return cached
    on_path = shutil.which("toxiproxy-server")
    if on_path and compatible(binary_version(Path(on_path))):
        return Path(on_path)
    go = shutil.which("go")
    if go is None:
        raise SetupError(
            "cannot build toxiproxy-server: Go is not installed and no toxiproxy-server 2.x is "
            "on PATH.\n  Fix: install Go (https://go.dev/dl, or 'apt-get install golang') and "
            "run 'make setup' again, or install toxiproxy-server and put it on PATH."
        )
    _go_install(go, "server", version, cached)
    return cached


def cached_toxiproxy_cli(version: str = TOXIPROXY_VERSION) -> Path:
    return cache_root() / "toxiproxy" / version / "toxiproxy-cli"


def find_toxiproxy_cli() -> Path | None:
    """Toxiproxy's own CLI, for breaking a running lab by hand: cached, else on PATH."""
    cached = cached_toxiproxy_cli()
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    on_path = shutil.which("toxiproxy-cli")
    return Path(on_path) if on_path else None


def install_toxiproxy_cli(version: str = TOXIPROXY_VERSION) -> Path | None:
    """Build toxiproxy-cli from the same Go module and version as the server (None without
    Go: the labs do not need it, a learner exploring by hand does)."""
    found = find_toxiproxy_cli()
    if found is not None:
        return found
    go = shutil.which("go")
    if go is None:
        return None
    cached = cached_toxiproxy_cli(version)
    _go_install(go, "cli", version, cached)
    return cached


def _go_install(go: str, command: str, version: str, cached: Path) -> None:
    """`go install` one of Toxiproxy's commands at `version` into the cache."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    package = f"{TOXIPROXY_MODULE}/cmd/{command}@v{version}"
    with tempfile.TemporaryDirectory(prefix="chaoslab-gobin-") as gobin:
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
        ldflags = f"-s -w -X {TOXIPROXY_MODULE}.Version={version}"
        result = subprocess.run(
            [go, "install", "-ldflags", ldflags, package],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SetupError(
                f"'go install {package}' failed:\n{result.stderr.strip()}\n  Fix: check that "
                "the Go module proxy is reachable (GOPROXY) and that Go is 1.22 or newer."
            )
        place_binary(Path(gobin) / command, cached)


def place_binary(built: Path, cached: Path) -> None:
    """Copy a freshly built program into the cache atomically, so that a concurrent run never
    sees half a binary (and two setups at once never write into each other's copy)."""
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
    shutil.copy2(built, tmp)
    tmp.replace(cached)
