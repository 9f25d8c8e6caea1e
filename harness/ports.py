"""Free TCP ports on 127.0.0.1, and a clear error when a port is taken."""

from __future__ import annotations

import contextlib
import socket

from harness._errors import PortInUse

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now; held together so that none is handed out twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def ensure_free(port: int, what: str) -> None:
    """Raise PortInUse, naming who needed the port, if `port` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on {HOST} is busy; {what} needs it.\n"
                f"  Fix: stop what listens there (see 'ss -ltnp sport = :{port}') or pick "
                "another port."
            ) from exc


def is_open(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
