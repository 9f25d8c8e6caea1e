"""harness.tap: the wire tap relays both ways and keeps each connection's bytes apart."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from harness.ports import free_ports
from harness.tap import Route, Tap, parse_routes, recorded


def test_routes_come_from_json() -> None:
    routes = parse_routes('{"a__b": {"port": 4101, "upstream": "127.0.0.1:4007"}}')
    assert routes == [Route("a__b", 4101, "127.0.0.1", 4007)]


async def _cancel_the_rest() -> None:
    """Cancel what still runs on this loop (relays of closed connections, finishing), in it."""
    this = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not this]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


def test_the_tap_relays_both_ways_and_records_each_connection(tmp_path: Path) -> None:
    upstream_port, tap_port = free_ports(2)
    echo = socket.create_server(("127.0.0.1", upstream_port))

    def serve_echo() -> None:
        for _ in range(2):
            conn, _ = echo.accept()
            with conn:
                data = conn.recv(1024)
                conn.sendall(b"echo:" + data)

    threading.Thread(target=serve_echo, daemon=True).start()
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=loop.run_forever, daemon=True)
    running.start()
    tap = Tap([Route("a__b", tap_port, "127.0.0.1", upstream_port)], "127.0.0.1", tmp_path)
    serving = asyncio.run_coroutine_threadsafe(tap.serve(), loop)

    answers = []
    for message in (b"card 4111", b"second"):
        for _ in range(100):  # the tap may not listen yet
            try:
                client = socket.create_connection(("127.0.0.1", tap_port), timeout=2)
                break
            except ConnectionRefusedError:
                threading.Event().wait(0.02)
        with client:
            client.sendall(message)
            client.shutdown(socket.SHUT_WR)  # a half-close passes through
            answers.append(b"".join(iter(lambda c=client: c.recv(1024), b"")))
    serving.cancel()
    asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    running.join(timeout=5)
    loop.close()
    echo.close()

    assert answers == [b"echo:card 4111", b"echo:second"]
    assert recorded(tmp_path, "a__b") == [
        (b"card 4111", b"echo:card 4111"),
        (b"second", b"echo:second"),
    ]
    assert recorded(tmp_path, "nothing") == []
