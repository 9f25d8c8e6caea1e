"""Find, or build from the Go program in this folder, `chaoslab-porcupine`: porcupine (the
linearizability checker of MIT 6.5840 and etcd's robustness tests) behind a JSON interface.

Order: `$CHAOSLAB_PORCUPINE`, the per-user cache (keyed by porcupine's version and a hash of the
program's source, so an edited program is rebuilt), then `chaoslab-porcupine` on PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness._errors import SetupError
from harness.tools import cache_root, place_binary

PORCUPINE_VERSION = "1.3.1"
SOURCE = Path(__file__).parent / "porcupine"
NAME = "chaoslab-porcupine"


def _source_hash() -> str:
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((SOURCE / name).read_bytes())
    return digest.hexdigest()[:12]


def cached_porcupine() -> Path:
    return cache_root() / "porcupine" / f"{PORCUPINE_VERSION}-{_source_hash()}" / NAME


def _answers(binary: Path) -> bool:
    try:
        out = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.startswith(NAME)


def find_porcupine() -> Path:
    """The checker program to run, or a SetupError that says how to get one."""
    configured = os.environ.get("CHAOSLAB_PORCUPINE")
    if configured:
        if not _answers(Path(configured)):
            raise SetupError(
                f"CHAOSLAB_PORCUPINE={configured} is not a working {NAME}.\n"
                "  Fix: unset it to use the one 'make setup' builds."
            )
        return Path(configured)
    cached = cached_porcupine()
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    on_path = shutil.which(NAME)
    if on_path and _answers(Path(on_path)):
        return Path(on_path)
    raise SetupError(
        f"{NAME} (the linearizability checker) not found (looked in $CHAOSLAB_PORCUPINE, "
        f"{cached} and PATH).\n  Fix: run 'make setup' (it builds it with Go 1.22+ from "
        f"porcupine v{PORCUPINE_VERSION} on the Go module proxy)."
    )


def install_porcupine() -> Path:
    """Make the checker available: reuse one, else `go build` it into the cache."""
    cached = cached_porcupine()
    if cached.is_file() and _answers(cached):
        return cached
    go = shutil.which("go")
    if go is None:
        on_path = shutil.which(NAME)
        if on_path and _answers(Path(on_path)):
            return Path(on_path)
        raise SetupError(
            f"cannot build {NAME}: Go is not installed.\n  Fix: install Go 1.22+ "
            "(https://go.dev/dl, or 'apt-get install golang') and run 'make setup' again."
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chaoslab-porcupine-") as work:
        built = Path(work) / NAME
        result = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(built), "."],
            cwd=SOURCE,
            env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SetupError(
                f"building {NAME} (porcupine v{PORCUPINE_VERSION}) failed:\n"
                f"{result.stderr.strip()}\n  Fix: check that the Go module proxy is reachable "
                "(GOPROXY) and that Go is 1.22 or newer."
            )
        place_binary(built, cached)
    return cached


def run_porcupine(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one history to the checker; its JSON answer. `timeout` bounds the whole call."""
    binary = find_porcupine()
    try:
        done = subprocess.run(
            [str(binary)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"result": "Unknown", "violations": [], "elapsed_ms": timeout * 1000}
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise SetupError(
            f"{binary} answered no verdict (exit {done.returncode}):\n{done.stderr.strip()}"
        ) from None
    return answer
