"""What a run recorded, kept for the report: every history's operations and every fault
window, on one clock (seconds since the run's checks began).

Histories and fault timelines register themselves when created, however a check made them
(the `traffic` and `faults` fixtures, or its own `Traffic(...)` and `Faults(...)`), and the
plugin writes them beside the run's logs when the session ends.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.faults import Timeline
    from harness.history import History

RECORD = "record.json"
_lock = threading.Lock()
_histories: list[History] = []
_timelines: list[Timeline] = []
_panels: list[dict[str, Any]] = []  # a dashboard's panels, drawn from the run's Prometheus
_traces: list[dict[str, Any]] = []  # a few traces from the run's Jaeger, as waterfalls
_began = time.monotonic()


def track_history(history: History) -> None:
    with _lock:
        _histories.append(history)


def track_timeline(timeline: Timeline) -> None:
    with _lock:
        _timelines.append(timeline)


def track_panels(panels: list[dict[str, Any]]) -> None:
    with _lock:
        _panels.extend(panels)


def track_traces(traces: list[dict[str, Any]]) -> None:
    with _lock:
        _traces.extend(traces)


def began_wall() -> float:
    """When the run's checks began, in wall-clock seconds (Prometheus's clock)."""
    return time.time() - (time.monotonic() - _began)


def begin() -> None:
    """A new run starts here (the plugin calls it at session start): forget what came before."""
    global _began
    with _lock:
        _histories.clear()
        _timelines.clear()
        _panels.clear()
        _traces.clear()
        _began = time.monotonic()


def _since(t: float | None) -> float | None:
    return None if t is None else round(t - _began, 4)


def snapshot() -> dict[str, Any]:
    """The run's operations and faults, as JSON-ready data."""
    with _lock:
        histories, timelines = list(_histories), list(_timelines)
    ops = [
        {
            "f": op.f,
            "value": str(op.value),
            "client": op.client,
            "start": _since(op.start),
            "end": _since(op.end),
            "status": op.status,
            "error": op.error,
        }
        for history in histories
        for op in list(history)
    ]
    faults = [
        {"description": e.description, "start": _since(e.start), "end": _since(e.end)}
        for timeline in timelines
        for e in list(timeline.events)
    ]
    with _lock:
        panels, traces = list(_panels), list(_traces)
    return {
        "began_wall": began_wall(),
        "ops": ops,
        "faults": faults,
        "panels": panels,
        "traces": traces,
    }


def write(folder: Path) -> Path:
    path = folder / RECORD
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot()) + "\n", encoding="utf-8")
    return path
