"""Free TCP ports on 127.0.0.1, and who listens on one.

Ports are drawn at random below the kernel's ephemeral range: a port the kernel hands out for
`bind(0)` or for an outgoing connection is the one another run (or any client) is most likely
to take between our choice and the service's bind. A conflict that still happens is retried by
the environment with new ports.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
PORT_RANGE = (20_000, 32_000)  # below Linux's default ephemeral range (32768-60999)
_random = random.SystemRandom()


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now; held together so that none is handed out twice."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count * 20):
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((HOST, _random.randrange(*PORT_RANGE)))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        while len(sockets) < count:  # the range is crowded: let the kernel choose
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def listener_is(pid: int, port: int) -> bool | None:
    """Whether the socket listening on `port` belongs to process `pid` (None: cannot tell)."""
    return _listener_among([pid], port)


def listener_in_group(pgid: int, port: int) -> bool | None:
    """Whether the socket listening on `port` belongs to a process of process group `pgid`
    (a service started by a wrapper listens in a child of it); None: cannot tell."""
    members = [pid for pid, stat in _processes() if int(stat[2]) == pgid]
    return _listener_among(members, port) if members else None


def _listener_among(pids: list[int], port: int) -> bool | None:
    table = _listen_table()
    if not table:
        return None
    inodes = {inode for inode, (_, listened) in table.items() if listened == port}
    if not inodes:
        return False
    readable = False
    for pid in pids:
        owned = _socket_inodes(pid)
        if owned is None:
            continue
        readable = True
        if inodes & owned:
            return True
    return False if readable else None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children...), from /proc."""
    children: dict[int, list[int]] = {}
    for child, stat in _processes():
        children.setdefault(int(stat[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def listening(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket these processes listen on, from /proc: to
    prove what a run exposes."""
    table = _listen_table()
    return [
        (*table[inode], pid)
        for pid in pids
        for inode in sorted(_socket_inodes(pid) or ())
        if inode in table
    ]


def _processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of its /proc/<pid>/stat after the name: state, ppid, pgrp, ...) of
    every process; the name may hold spaces, so the fields are split after its ")"."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            yield int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()


def _listen_table() -> dict[str, tuple[str, int]]:
    """The TCP sockets in LISTEN state, IPv4 and IPv6 (a service may listen on either):
    socket inode -> (address, port)."""
    listeners = {}
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    address, port = fields[1].rsplit(":", 1)
                    listeners[fields[9]] = (_address(address), int(port, 16))
    return listeners


def _socket_inodes(pid: int) -> set[str] | None:
    """The inodes of the sockets process `pid` holds open; None when its fds cannot be read."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _address(hex_address: str) -> str:
    """/proc/net/tcp's address (32-bit words in host order, little-endian here) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def is_open(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def is_local_address(host: str) -> bool:
    """Whether `host` is an address of this machine (one a server here can listen on)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True
