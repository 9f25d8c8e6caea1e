"""primary: the key-value store every write goes to, and the log its replica follows.

Owned by the lab, not by you. Every write is appended to a log and gets the next log position
(1, 2, 3...); every answer carries the store's position in a `Log-Position` header: for a
write, the position of that write; for a read, how far the log goes (the read reflects every
write up to there). `written_at` is the position of the write that set the value (0: none).

    PUT /kv/{key}  {"value": "v"}  -> 200 {"key": k, "value": "v", "written_at": 1042}
                                      Log-Position: 1042
    GET /kv/{key}                  -> 200 {"key": k, "value": "v" or null, "written_at": 1042}
                                      Log-Position: 1057
    GET /log?after=N                 -> the log after position N as a stream of JSON lines,
                                        then each new write as it happens (the replica reads it)

For the checks only: GET /record (the log, and every read it answered: when, which key, the
value and its position), GET /position, and POST /admin/import {"to": N} (a bulk import:
filler writes to keys item:N until the log reaches position N).
"""

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from harness.service_kit import with_chaos

log: list[dict[str, object]] = []  # log[i] is the write at position i + 1
data: dict[str, tuple[str, int]] = {}  # key -> (value, written_at)
reads: list[dict[str, object]] = []
written = asyncio.Condition()


def position() -> int:
    return len(log)


async def append(key: str, value: str) -> int:
    log.append({"position": len(log) + 1, "key": key, "value": value, "time": time.time()})
    data[key] = (value, len(log))
    async with written:
        written.notify_all()
    return len(log)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put_value(request: Request) -> Response:
    key = request.path_params["key"]
    body = await request.json()
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)
    at = await append(key, value)
    return JSONResponse(
        {"key": key, "value": value, "written_at": at}, headers={"Log-Position": str(at)}
    )


async def get_value(request: Request) -> Response:
    key = request.path_params["key"]
    value, written_at = data.get(key, (None, 0))
    at = position()
    reads.append({"time": time.time(), "key": key, "value": value, "position": at})
    return JSONResponse(
        {"key": key, "value": value, "written_at": written_at},
        headers={"Log-Position": str(at)},
    )


async def stream_log(request: Request) -> StreamingResponse:
    after = int(request.query_params.get("after", "0"))

    async def entries() -> AsyncIterator[bytes]:
        sent = after
        while True:
            async with written:
                while position() <= sent:
                    await written.wait()
            batch = log[sent:]
            sent += len(batch)
            yield b"".join(
                json.dumps({k: e[k] for k in ("position", "key", "value")}).encode() + b"\n"
                for e in batch
            )

    return StreamingResponse(entries(), media_type="application/x-ndjson")


async def record(request: Request) -> JSONResponse:
    return JSONResponse({"log": log, "reads": reads})


async def current_position(request: Request) -> JSONResponse:
    return JSONResponse({"position": position()})


async def bulk_import(request: Request) -> JSONResponse:
    target = int((await request.json())["to"])
    while position() < target:
        n = position() + 1
        log.append({"position": n, "key": f"item:{n}", "value": f"item-{n}", "time": 0.0})
        data[f"item:{n}"] = (f"item-{n}", n)
    async with written:
        written.notify_all()
    return JSONResponse({"position": position()})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", put_value, methods=["PUT"]),
        Route("/kv/{key}", get_value, methods=["GET"]),
        Route("/log", stream_log),
        Route("/record", record),
        Route("/position", current_position),
        Route("/admin/import", bulk_import, methods=["POST"]),
    ]
)
chaos = with_chaos(app)


async def service(scope: Scope, receive: Receive, send: Send) -> None:
    # The replication stream bypasses the chaos middleware: it records a request when it
    # arrives and never tells the app that a client went away, so an endless stream would
    # outlive its replica's connection.
    if scope["type"] == "http" and scope["path"] == "/log":
        await app(scope, receive, send)
    else:
        await chaos(scope, receive, send)


if __name__ == "__main__":
    # The replica's stream never ends on its own: on shutdown, cut it rather than wait for it.
    uvicorn.run(
        service,
        host=os.environ["HOST"],
        port=int(os.environ["PORT"]),
        log_level="warning",
        timeout_graceful_shutdown=0.1,
    )
