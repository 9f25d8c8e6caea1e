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
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")"
            after = stat.read_text().rsplit(")", 1)[1].split()
            if int(after[2]) == pgid:
                members.append(int(stat.parent.name))
    return _listener_among(members, port) if members else None


def _listener_among(pids: list[int], port: int) -> bool | None:
    table = []
    for name in ("tcp", "tcp6"):  # a service may listen on IPv6 too
        with contextlib.suppress(OSError):
            table += Path(f"/proc/net/{name}").read_text().splitlines()[1:]
    if not table:
        return None
    inodes = set()
    for line in table:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            inodes.add(inode)
    if not inodes:
        return False
    readable = False
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        readable = True
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return True
    return False if readable else None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children...), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def listening(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket these processes listen on, from /proc: to
    prove what a run exposes."""
    listeners: dict[str, tuple[str, int]] = {}
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    address, port = fields[1].rsplit(":", 1)
                    listeners[fields[9]] = (_address(address), int(port, 16))
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in listeners:
                        found.append((*listeners[target[8:-1]], pid))
    return found


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
