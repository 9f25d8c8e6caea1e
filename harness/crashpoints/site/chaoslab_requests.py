"""chaoslab request lines, inside a lab's Python service: one line per request it served, for
`chaoslab logs`, without touching the service's own output.

Services run uvicorn at warning level, so their logs hold no request at all, and a learner
reading `chaoslab logs` cannot see what reached what. This keeps uvicorn's access log, at
whatever level the service set it, and writes each request to $CHAOSLAB_REQUEST_LOG (a file in
the run's logs folder) as a stamped line: `POST /charges -> 201`. The service's stdout, which
some checks judge line by line, gets only what it asked for. Nothing here runs unless the
harness set $CHAOSLAB_REQUEST_LOG, and nothing imports uvicorn.
"""

import logging
import os
import threading
import time

_PATH = os.environ.get("CHAOSLAB_REQUEST_LOG", "")
# The harness's UTC offset: stamps read on the harness's clock, whatever a container's zone.
_OFFSET = float(os.environ.get("CHAOSLAB_UTC_OFFSET", "0") or 0)
_lock = threading.Lock()
_out = None


def _write(record: logging.LogRecord) -> None:
    global _out
    args = record.args if isinstance(record.args, tuple) else ()
    if len(args) == 5 and str(args[2]).startswith("/_chaoslab"):
        return  # the harness reading what a service of the lab's recorded: not the story
    # uvicorn's arguments: client, method, path, HTTP version, status.
    text = f"{args[1]} {args[2]} -> {args[4]}" if len(args) == 5 else record.getMessage()
    at = record.created + _OFFSET
    stamp = time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}"
    with _lock:
        try:
            if _out is None:
                _out = open(_PATH, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            _out.write(f"{stamp} {text}\n")
        except OSError:
            pass  # a request line lost is no reason to fail a request


class _AccessLog(logging.Logger):
    """uvicorn's access logger: every request is written down; its own handlers get only the
    records at or above the level the service set."""

    configured = logging.NOTSET

    def setLevel(self, level: int | str) -> None:
        probe = logging.Logger("probe")
        probe.setLevel(level)
        self.configured = probe.level
        super().setLevel(min(self.configured, logging.INFO) or logging.INFO)

    def callHandlers(self, record: logging.LogRecord) -> None:
        _write(record)
        threshold = self.configured or (self.parent.getEffectiveLevel() if self.parent else 0)
        if record.levelno >= threshold:
            super().callHandlers(record)


if _PATH:
    _previous = logging.getLoggerClass()
    logging.setLoggerClass(_AccessLog)
    try:
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        logging.getLogger("uvicorn.access").configured = logging.NOTSET  # type: ignore[attr-defined]
    finally:
        logging.setLoggerClass(_previous)
