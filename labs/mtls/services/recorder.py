"""The small HTTP server of the ledger and the impostor: it answers one request per connection,
over plain HTTP or TLS on the same port, and writes down every request it was sent, with who
sent it, to STATE_DIR/calls.jsonl. Owned by the lab, not by you.

A TLS handshake starts with the byte 0x16; plain HTTP starts with a method name. The server
looks at the first byte without taking it, then serves the connection either way. Each TLS
connection reads the certificate in TLS_DIR again, so a new one counts at once.
"""

import asyncio
import json
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h11
from cryptography import x509

HANDSHAKE = b"\x16"
TIMEOUT = 10.0


@dataclass
class Call:
    """One request received: what, when, and who sent it (None over plain HTTP)."""

    method: str
    path: str
    body: Any
    at: float
    tls: bool
    peer: str | None  # the caller certificate's DNS name
    peer_serial: int | None
    status: int = 0


Answer = Callable[[Call], tuple[int, dict[str, Any]]]


def run(answer: Answer, *, require_client_cert: bool) -> None:
    asyncio.run(_serve(answer, require_client_cert))


async def _serve(answer: Answer, require_client_cert: bool) -> None:
    server = socket.create_server((os.environ["HOST"], int(os.environ["PORT"])), backlog=256)
    server.setblocking(False)
    log = Path(os.environ["STATE_DIR"]) / "calls.jsonl"
    loop = asyncio.get_running_loop()
    tasks = set()
    while True:
        sock, _ = await loop.sock_accept(server)
        task = asyncio.create_task(_connection(sock, answer, require_client_cert, log))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _context(require_client_cert: bool) -> ssl.SSLContext:
    folder = Path(os.environ["TLS_DIR"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=folder / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    context.load_cert_chain(folder / "cert.pem")
    return context


async def _first_byte(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    while True:
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _settle, readable)
            try:
                await asyncio.wait_for(readable, TIMEOUT)
            finally:
                loop.remove_reader(sock.fileno())


def _settle(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


async def _connection(
    sock: socket.socket, answer: Answer, require_client_cert: bool, log: Path
) -> None:
    loop = asyncio.get_running_loop()
    try:
        first = await _first_byte(sock)
        context = _context(require_client_cert) if first == HANDSHAKE else None
        reader = asyncio.StreamReader()
        transport, protocol = await loop.connect_accepted_socket(
            lambda: asyncio.StreamReaderProtocol(reader), sock, ssl=context
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    except (OSError, TimeoutError, ValueError):
        sock.close()  # a refused handshake, or a caller that left
        return
    try:
        await asyncio.wait_for(_exchange(reader, writer, answer, log), TIMEOUT)
    except (OSError, TimeoutError, h11.ProtocolError, ValueError):
        pass
    finally:
        writer.close()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: Answer, log: Path
) -> None:
    http = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = b""
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await reader.read(65536))
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    if request is None:
        return
    der = None
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None:
        der = ssl_object.getpeercert(binary_form=True)
    certificate = x509.load_der_x509_certificate(der) if der else None
    call = Call(
        method=request.method.decode(),
        path=request.target.decode(),
        body=_json(body),
        at=time.time(),
        tls=ssl_object is not None,
        peer=_dns_name(certificate),
        peer_serial=certificate.serial_number if certificate else None,
    )
    status, reply = answer(call)
    call.status = status
    with log.open("a") as out:
        out.write(json.dumps(asdict(call)) + "\n")
    data = json.dumps(reply).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(data)))]
    headers.append(("connection", "close"))
    writer.write(http.send(h11.Response(status_code=status, headers=headers)) or b"")
    writer.write(http.send(h11.Data(data=data)) or b"")
    writer.write(http.send(h11.EndOfMessage()) or b"")
    await writer.drain()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode(errors="replace")


def _dns_name(certificate: x509.Certificate | None) -> str | None:
    if certificate is None:
        return None
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    found = names.value.get_values_for_type(x509.DNSName)
    return found[0] if found else None
