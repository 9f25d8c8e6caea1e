"""Find, or build, the real Jaeger (v2: the OpenTelemetry Collector with Jaeger's storage and
query API) that a lab with traces runs.

Order: `$CHAOSLAB_JAEGER`, the per-user cache (keyed by version), then `jaeger` on PATH. No
registry this project can reach ships a Jaeger binary, so one is built from its Go module:
`go install` refuses the module (its go.mod has replace directives), so the build adds it as a
tool of a throwaway module (`go get -tool`) and builds that, about 8 minutes on 2 cores the
first time. `make setup` does it once; a lab that needs one builds it, saying so. A file lock
keeps two runs that need it at once (parallel test workers) from building it twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness._errors import SetupError
from harness.tools import cache_root, place_binary

GO_MODULE = "github.com/jaegertracing/jaeger"
VERSION = "v1.76.0"  # Jaeger v2.13's module version, as its Go module is tagged
BUILD_MINUTES = "about 8 minutes on 2 cores"


@dataclass(frozen=True)
class Jaeger:
    """A Jaeger v2 binary (collector, in-memory storage and query API in one program)."""

    binary: Path


def cached_binary() -> Path:
    return cache_root() / "jaeger" / f"go-{VERSION}" / "jaeger"


def runs(binary: Path) -> bool:
    """Whether `binary` is a Jaeger v2 that runs here (`jaeger version` answers)."""
    try:
        done = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "gitVersion" in done.stdout + done.stderr


def find_jaeger() -> Jaeger | None:
    """The Jaeger to run, if one is here; a bad `$CHAOSLAB_JAEGER` is a SetupError."""
    configured = os.environ.get("CHAOSLAB_JAEGER")
    if configured:
        if not runs(Path(configured)):
            raise SetupError(
                f"CHAOSLAB_JAEGER={configured} is not a working Jaeger v2 binary "
                "('jaeger version' did not answer).\n"
                "  Fix: unset it to use the one chaoslab builds, or point it at one."
            )
        return Jaeger(Path(configured))
    cached = cached_binary()
    if cached.is_file() and os.access(cached, os.X_OK):
        return Jaeger(cached)  # built by chaoslab at this version; it ran when it was placed
    on_path = shutil.which("jaeger")
    if on_path and runs(Path(on_path)):
        return Jaeger(Path(on_path))
    return None


def install_jaeger() -> Jaeger:
    """Make Jaeger available: reuse one, else build it from its Go module (once per machine:
    a concurrent caller waits for the build instead of starting another)."""
    found = find_jaeger()
    if found is not None:
        return found
    with _build_lock():
        found = find_jaeger()  # built by whoever held the lock before us
        if found is not None:
            return found
        return _build()


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    lock_path = cache_root() / "jaeger" / ".build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build() -> Jaeger:
    go = shutil.which("go")
    if go is None:
        raise SetupError(
            "this lab needs Jaeger (the trace backend), and Go is not installed to build it.\n"
            "  Fix: install Go 1.24+ and run 'chaoslab setup', or put a Jaeger v2 binary on "
            "PATH as 'jaeger', or set CHAOSLAB_JAEGER."
        )
    print(
        f"chaoslab: building Jaeger {VERSION} from its Go module, once for this machine "
        f"({BUILD_MINUTES})...",
        file=sys.stderr,
        flush=True,
    )
    target = cached_binary()
    with tempfile.TemporaryDirectory(prefix="chaoslab-jaeger-") as work:
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        steps = [
            [go, "mod", "init", "chaoslab.local/jaeger-build"],
            [go, "get", "-tool", f"{GO_MODULE}/cmd/jaeger@{VERSION}"],
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                f"-s -w -X {GO_MODULE}/internal/version.latestVersion={VERSION}",
                "-o",
                str(Path(work) / "jaeger"),
                f"{GO_MODULE}/cmd/jaeger",
            ],
        ]
        for argv in steps:
            done = _run(argv, cwd=work, env=env)
            if done.returncode != 0:
                raise SetupError(
                    f"building Jaeger: '{' '.join(argv[1:3])} ...' failed:\n"
                    f"{_tail(done.stderr)}\n  Fix: check that the Go module proxy is reachable "
                    "(GOPROXY) and that Go is 1.24 or newer."
                )
        if not runs(Path(work) / "jaeger"):
            raise SetupError("building Jaeger: the binary it gave does not run here")
        target.parent.mkdir(parents=True, exist_ok=True)
        place_binary(Path(work) / "jaeger", target)
    return Jaeger(target)


def _run(argv: list[str], *, cwd: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"building Jaeger: '{' '.join(argv[:3])}' took over an hour") from exc
    except OSError as exc:
        raise SetupError(f"building Jaeger: '{argv[0]}' could not run: {exc}") from exc


def _tail(text: str, lines: int = 8) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "no output"
