"""A wire tap: a TCP relay between a link's Toxiproxy proxy and its service that keeps every byte
that crosses, as anyone on that network could. For checks like "nothing readable crosses the
link": what the tap holds is what an eavesdropper would have.

Run by the environment, one per run, for the links declared `{ tap = true }`:

    TAP_ROUTES='{"checkout__payments": {"port": 4101, "upstream": "127.0.0.1:4007"}}' \
        HOST=127.0.0.1 STATE_DIR=... python -m harness.tap

Each connection's bytes go to `STATE_DIR/<route>/<n>.up` (from the caller) and `<n>.down`
(from the service), written as they pass: one file per connection and direction, so that two
connections' bytes never interleave (a secret split across reads stays whole in its file).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

CHUNK = 65536


@dataclass(frozen=True)
class Route:
    name: str
    port: int
    upstream_host: str
    upstream_port: int


def parse_routes(text: str) -> list[Route]:
    """TAP_ROUTES: {name: {"port": listen port, "upstream": "host:port"}}."""
    routes = []
    for name, spec in json.loads(text).items():
        host, _, port = str(spec["upstream"]).rpartition(":")
        routes.append(Route(name, int(spec["port"]), host, int(port)))
    return routes


def recorded(folder: Path, route: str) -> list[tuple[bytes, bytes]]:
    """What crossed `route` so far: (bytes up, bytes down) per connection, in order."""
    base = folder / route
    if not base.is_dir():
        return []
    numbers = sorted({int(p.name.split(".")[0]) for p in base.iterdir() if p.name[0].isdigit()})
    return [(_read(base / f"{n}.up"), _read(base / f"{n}.down")) for n in numbers]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


class Tap:
    def __init__(self, routes: list[Route], host: str, folder: Path) -> None:
        self.routes = routes
        self.host = host
        self.folder = folder
        self._numbers = itertools.count(1)

    async def serve(self) -> None:
        servers = []
        for route in self.routes:
            (self.folder / route.name).mkdir(parents=True, exist_ok=True)
            servers.append(
                await asyncio.start_server(
                    functools.partial(self._relay, route), self.host, route.port
                )
            )
        await asyncio.gather(*(server.serve_forever() for server in servers))

    async def _relay(
        self, route: Route, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        number = next(self._numbers)
        base = self.folder / route.name / str(number)
        try:
            upstream_reader, upstream = await asyncio.open_connection(
                route.upstream_host, route.upstream_port
            )
        except OSError:
            client.close()  # the service is down: the caller sees what it would without a tap
            return
        try:
            await asyncio.gather(
                _pipe(client_reader, upstream, base.with_suffix(".up")),
                _pipe(upstream_reader, client, base.with_suffix(".down")),
            )
        finally:
            client.close()
            upstream.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: Path) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while chunk := await reader.read(CHUNK):
            os.write(fd, chunk)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close passes through, as TCP would carry it
    except (ConnectionError, OSError):
        writer.close()  # a reset on one side resets the other
    finally:
        os.close(fd)


def main() -> None:
    routes = parse_routes(os.environ["TAP_ROUTES"])
    folder = Path(os.environ["STATE_DIR"])
    try:
        asyncio.run(Tap(routes, os.environ.get("HOST", "127.0.0.1"), folder).serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
