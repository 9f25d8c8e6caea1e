"""One readiness abstraction for every backend: wait until a service answers, or explain why not.

A timeout error carries the service's last log lines and a `Hint:` line, because "not ready
after 20 s" alone sends a learner nowhere.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Protocol

from harness._errors import PortInUse, RunError, ServiceNotReady
from harness.lab import Readiness


class ReadinessTarget(Protocol):
    """What a wait needs from a running service, whatever runs it."""

    name: str

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def exit_code(self) -> int | None:
        """The exit code if the service has stopped, else None."""

    def log_tail(self, lines: int = 20) -> str: ...


def probe(target: ReadinessTarget, readiness: Readiness) -> bool:
    """One attempt: True when the service answers as its readiness asks."""
    if readiness.kind == "port":
        return accepts(target.host, target.port)
    url = f"http://{target.host}:{target.port}{readiness.path}"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def accepts(host: str, port: int, timeout: float = 0.2, grace: float = 0.05) -> bool:
    """A listener takes the connection and keeps it: a port forwarder (Docker's userland proxy
    on a published port) accepts even when nothing listens behind it, then hangs up at once."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(grace)
            try:
                return sock.recv(1) != b""
            except TimeoutError:
                return True  # open and quiet: a real listener
    except OSError:
        return False


def wait_ready(
    target: ReadinessTarget,
    readiness: Readiness,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    check: Callable[[ReadinessTarget, Readiness], bool] = probe,
) -> float:
    """Block until `target` is ready; returns the seconds waited.

    Raises ServiceNotReady, or PortInUse when the service's log says its port was taken."""
    start = clock()
    delay = 0.01
    impostor = False  # another program answered on the service's port
    while True:
        if check(target, readiness):
            if _answered_by_itself(target):
                return clock() - start
            impostor = True  # it fails to bind, says so in its log, and exits: see below
        code = target.exit_code()
        if code is not None:
            raise _not_ready(target, f"exited with code {code} before it was ready")
        if clock() - start > readiness.timeout:
            if impostor:
                raise PortInUse(
                    _explain(
                        target, f"never answered: another program answers on its port {target.port}"
                    ),
                    port=target.port,
                )
            what = readiness.path if readiness.kind == "http" else f"port {target.port}"
            raise _not_ready(
                target, f"was not ready after {readiness.timeout:.0f} s (waiting on {what})"
            )
        sleep(delay)
        delay = min(delay * 2, 0.1)


def _answered_by_itself(target: ReadinessTarget) -> bool:
    """False only when the target can tell that another program holds its port (a process
    service can; a container has a network of its own, where no other run listens)."""
    owns = getattr(target, "owns_port", None)
    return owns is None or owns() is not False


def _not_ready(target: ReadinessTarget, problem: str) -> ServiceNotReady:
    """The error to raise: PortInUse when the log says the port was taken."""
    tail = target.log_tail(20)
    text = _explain(target, problem, tail)
    if _port_taken(tail):
        return PortInUse(text, port=taken_port(tail))
    return ServiceNotReady(text)


def _port_taken(log: str) -> bool:
    return "address already in use" in log.lower()


# How servers name the address they could not bind: uvicorn `('127.0.0.1', 8000)`, Go
# `listen tcp 127.0.0.1:8000: bind`, Node `EADDRINUSE: address already in use :::8000`.
_BIND_ADDRESS = (
    re.compile(r"\(\s*'[^']*'\s*,\s*(\d{1,5})\s*\)"),
    re.compile(r"(?:tcp|udp)\S*\s+\S*:(\d{1,5})\b"),
    re.compile(r"address already in use\s+\S*:(\d{1,5})\b", re.IGNORECASE),
    re.compile(r"\bport\s+(\d{1,5})\b", re.IGNORECASE),
)


def taken_port(log: str) -> int | None:
    """The port a service's log says it could not bind, if the log names one."""
    for line in reversed(log.splitlines()):
        if "in use" not in line.lower() and "bind" not in line.lower():
            continue
        for pattern in _BIND_ADDRESS:
            match = pattern.search(line)
            if match:
                return int(match.group(1))
    return None


MAX_LINE = 300  # characters of one log line in an error; a 1 MB line must not become the error


def clip(line: str, limit: int = MAX_LINE) -> str:
    """A log line cut to `limit` characters, saying how much was left out."""
    if len(line) <= limit:
        return line
    return f"{line[:limit]}... ({len(line) - limit} more characters)"


def _explain(target: ReadinessTarget, problem: str, tail: str | None = None) -> str:
    if tail is None:
        tail = target.log_tail(20)
    shown = tail.rstrip() or "(no output)"
    indented = "\n".join(f"    {clip(line)}" for line in shown.splitlines())
    if _port_taken(tail):
        port = taken_port(tail)
        if port is None:
            hint = (
                "a port the service tried to listen on is busy: another program took it. The "
                f"harness gave it PORT={target.port}; make sure it listens on $HOST:$PORT, or "
                "run the check again to get other ports."
            )
        elif port == target.port:
            hint = (
                f"port {port} is busy: another program took it. Stop it (see "
                f"'ss -ltnp sport = :{port}') or run the check again to get other ports."
            )
        else:
            hint = (
                f"port {port} is busy: another program took it (see 'ss -ltnp sport = :{port}'). "
                f"The service tried to listen on {port}, but the harness gave it PORT="
                f"{target.port}: listen on $HOST:$PORT instead of a fixed port."
            )
    else:
        hint = (
            "look for an exception above, or run 'chaoslab logs' for the whole log; the "
            "service must listen on $HOST:$PORT."
        )
    return f"service '{target.name}' {problem}.\n  Last log lines:\n{indented}\n  Hint: {hint}"


def wait_answering(
    what: str,
    url: str,
    answers: Callable[[], bool],
    gone: Callable[[], str | None],
    timeout: float,
) -> None:
    """Until a companion of the run (Prometheus, Jaeger) `answers()` at `url`; a RunError if
    `gone()` says why it never will, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not answers():
        why = gone()
        if why is not None or time.monotonic() > deadline:
            raise RunError(
                f"{what} did not start at {url}: {why or f'no answer within {timeout:.0f} s'}"
            )
        time.sleep(0.05)
