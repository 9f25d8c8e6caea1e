"""Crash points: crash a lab's service at a point in its own execution, not at a moment in time.

A kill at a moment rarely lands in the microseconds between two commits; a crash point does,
every run. For Python services that use sqlite3: right after the service's Nth database commit
counted from arming (`site/sitecustomize.py`, put on every service's path by the environment,
armed through a file named by `$CHAOSLAB_CRASHPOINT`). Harness-owned services crash on their
Nth request on a route through an HTTP fault rule instead (`Faults.http(crash=...)`).

Power loss (`durability.py`, `site/chaoslab_durability.py`): what a power cut would leave of
the files a Python service writes, so that a check can tell a flush from an fsync.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from harness.crashpoints.durability import Reverted, durability_dir, revert_to_durable

SITE = Path(__file__).resolve().parent / "site"
ARM_VARIABLE = "CHAOSLAB_CRASHPOINT"
DURABILITY_VARIABLE = "CHAOSLAB_DURABILITY"


def install(run_dir: Path) -> Path:
    """Copy the service-side hooks into the run's folder (mounted in containers too)."""
    site = run_dir / "site"
    if not (site / "sitecustomize.py").is_file():
        site.mkdir(parents=True, exist_ok=True)
        for hook in SITE.glob("*.py"):
            shutil.copyfile(hook, site / hook.name)
    return site


def service_env(run_dir: Path, service: str, pythonpath: str = "") -> dict[str, str]:
    """The variables that let the harness arm a crash point in `service`, and cut its power."""
    site = str(install(run_dir))
    durability = durability_dir(run_dir, service)
    durability.mkdir(parents=True, exist_ok=True)
    # The service runs in the harness's Python environment: keep the harness's own path too.
    inherited = os.environ.get("PYTHONPATH", "")
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (site, pythonpath, inherited) if p),
        ARM_VARIABLE: str(arm_file(run_dir, service)),
        DURABILITY_VARIABLE: str(durability),
    }


def arm_file(run_dir: Path, service: str) -> Path:
    return run_dir / "crashpoints" / f"{service}.json"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


EVENTS = {
    "commits": "database commit",  # sqlite3: a commit that changed rows
    "truncates": "emptying of a file with data (open for writing without append)",
}


class CrashPoint:
    """An armed "crash right after the Nth event of a kind" in one service: its Nth database
    commit (`commits`), or the Nth time it empties a file with data under its STATE_DIR by
    opening it for writing, the first step of a rewrite in place (`truncates`).

    `died` tells whether the service process has exited (the backend's view), so that `wait`
    returns only once the crash really happened, not merely once the file was renamed."""

    def __init__(
        self,
        run_dir: Path,
        service: str,
        nth: int,
        died: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        kind: str = "commits",
    ) -> None:
        if nth < 1:
            raise ValueError(f"nth must be 1 or more, not {nth}")
        if kind not in EVENTS:
            raise ValueError(f"a crash point counts one of {sorted(EVENTS)}, not {kind!r}")
        self.service = service
        self.nth = nth
        self.kind = kind
        self._file = arm_file(run_dir, service)
        self._fired_file = self._file.with_name(self._file.name + ".fired")
        self._died = died
        self._clock = clock

    @property
    def description(self) -> str:
        return f"{self.service} crashes right after its {_ordinal(self.nth)} {EVENTS[self.kind]}"

    def arm(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        self._fired_file.unlink(missing_ok=True)
        spec = {"id": uuid.uuid4().hex, f"after_{self.kind}": self.nth}
        scratch = self._file.with_suffix(".tmp")
        scratch.write_text(json.dumps(spec))
        os.replace(scratch, self._file)  # the service never reads half a file

    def disarm(self) -> None:
        self._file.unlink(missing_ok=True)

    @property
    def fired(self) -> bool:
        """Whether the service reached the point (and so crashed there)."""
        return self._fired_file.exists()

    def wait(self, timeout: float = 10.0, poll: float = 0.02) -> bool:
        """Block until the service died at the point; False if it did not within `timeout`."""
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            if self.fired and self._died():
                return True
            time.sleep(poll)
        return self.fired and self._died()

    def clear(self) -> None:
        self.disarm()
        self._fired_file.unlink(missing_ok=True)


__all__ = [
    "ARM_VARIABLE",
    "DURABILITY_VARIABLE",
    "CrashPoint",
    "Reverted",
    "revert_to_durable",
    "service_env",
]
