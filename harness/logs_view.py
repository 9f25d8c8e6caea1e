"""`chaoslab logs LAB`: the last run's logs as one story, in time order: every service's lines,
Toxiproxy's (proxies coming and going, connections cut), and the faults the checks injected,
as they were added and removed. Each log line carries the time it came (harness.processes
stamps it; the docker backend converts Docker's own timestamps)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) (.*)$")
DAY = 86_400.0


def _seconds(match: re.Match[str]) -> float:
    h, m, s, ms = (int(match.group(i)) for i in range(1, 5))
    return h * 3600 + m * 60 + s + ms / 1000


def _clock(seconds: float) -> str:
    seconds %= DAY
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}"


def _toxiproxy_text(text: str) -> str:
    """Toxiproxy's JSON log line, as a sentence."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    about = ", ".join(
        f"{k} {data[k]}" for k in ("name", "client", "error") if data.get(k) not in (None, "")
    )
    return f"{data.get('level', '')}: {data.get('message', '')}" + (f" ({about})" if about else "")


def merged(folder: Path, record: dict[str, Any] | None) -> list[str]:
    """Every stamped line of the run's logs and every fault's start and end, in time order."""
    origin = 0.0  # the run's start, as a local time of day (the stamps' clock)
    if record:
        began = float(record["began_wall"])
        local = time.localtime(began)
        origin = local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + began % 1
    entries: list[tuple[float, int, str, str]] = []
    order = 0
    for log in sorted(folder.glob("*.log")):
        source = log.stem
        last = 0.0
        for line in log.read_text(errors="replace").splitlines():
            match = _STAMP.match(line)
            if match:
                last, text = _seconds(match), match.group(5)
            else:
                text = line
            if source == "toxiproxy":
                text = _toxiproxy_text(text)
            order += 1
            entries.append((last, order, source, text))
    for fault in (record or {}).get("faults", []):
        start = origin + float(fault["start"])
        order += 1
        entries.append((start, order, "FAULT ON", fault["description"]))
        if fault.get("end") is not None:
            order += 1
            entries.append((origin + float(fault["end"]), order, "FAULT OFF", fault["description"]))
    # Sorted from the run's start, so that a run across midnight still reads in order.
    entries.sort(key=lambda e: ((e[0] - origin) % DAY, e[1]))
    width = max((len(e[2]) for e in entries), default=0)
    return [f"{_clock(t)}  {source.ljust(width)}  {text}" for t, _, source, text in entries]
