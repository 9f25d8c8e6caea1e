"""replica: an asynchronous copy of the primary, for reads.

Owned by the lab, not by you. It follows the primary's log (GET $PRIMARY_URL/log, a stream of
the writes in order) and applies each write as it arrives, so it is behind the primary by as
long as the stream takes to get here. It refuses writes. Every answer carries the position of
the last write it applied in a `Log-Position` header: a read reflects every write up to there.

    GET /kv/{key}  -> 200 {"key": k, "value": "v" or null, "written_at": 1017}
                      Log-Position: 1031

`written_at` is the log position of the write that set the value (0: none).

For the checks only: GET /record (every read it answered: when, which key, the value, and the
position it had applied) and GET /position.
"""

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.service_kit import with_chaos

PRIMARY_URL = os.environ["PRIMARY_URL"]

data: dict[str, tuple[str, int]] = {}  # key -> (value, written_at)
applied = 0
reads: list[dict[str, object]] = []


async def follow_primary() -> None:
    """Apply the primary's log in order, forever; reconnect from where it stopped."""
    global applied
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as http:
        while True:
            try:
                async with http.stream(
                    "GET", f"{PRIMARY_URL}/log", params={"after": applied}
                ) as stream:
                    async for line in stream.aiter_lines():
                        if not line:
                            continue
                        entry = json.loads(line)
                        if entry["position"] == applied + 1:
                            data[entry["key"]] = (entry["value"], entry["position"])
                            applied = entry["position"]
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.05)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(follow_primary())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def get_value(request: Request) -> Response:
    key = request.path_params["key"]
    value, written_at = data.get(key, (None, 0))
    reads.append({"time": time.time(), "key": key, "value": value, "position": applied})
    return JSONResponse(
        {"key": key, "value": value, "written_at": written_at},
        headers={"Log-Position": str(applied)},
    )


async def refuse_write(request: Request) -> JSONResponse:
    return JSONResponse({"error": "read-only replica: write to the primary"}, status_code=405)


async def record(request: Request) -> JSONResponse:
    return JSONResponse({"reads": reads})


async def current_position(request: Request) -> JSONResponse:
    return JSONResponse({"position": applied})


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/kv/{key}", get_value, methods=["GET"]),
            Route("/kv/{key}", refuse_write, methods=["PUT", "POST", "DELETE"]),
            Route("/record", record),
            Route("/position", current_position),
        ],
        lifespan=lifespan,
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
