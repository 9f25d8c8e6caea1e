"""The store: a small shared key-value store that every API replica can reach at $STORE_URL.

Owned by the lab, not by you. Each key holds one JSON value and a version number that goes up
by one on every write. A write names the version it read, and happens only if nobody wrote the
key since (compare-and-set), so two replicas cannot both update from the same old value.

    GET /kv/{key}   200 {"value": <JSON or null>, "version": n}   (version 0: never written)
    PUT /kv/{key}   body {"value": <JSON>, "version": n}
                    200 {"version": n + 1}  the key still had version n: written
                    409 {"version": m}      someone wrote it since: read again, redo, write again
"""

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

data: dict[str, tuple[object, int]] = {}  # key -> (value, version)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def read(request: Request) -> JSONResponse:
    value, version = data.get(request.path_params["key"], (None, 0))
    return JSONResponse({"value": value, "version": version})


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    version = body.get("version") if isinstance(body, dict) else None
    if not isinstance(version, int) or "value" not in body:
        return JSONResponse(
            {"error": 'send {"value": ..., "version": <the version you read>}'}, status_code=400
        )
    # No await between the comparison and the write: the two happen as one step.
    _, current = data.get(key, (None, 0))
    if version != current:
        return JSONResponse({"version": current}, status_code=409)
    data[key] = (body["value"], current + 1)
    return JSONResponse({"version": current + 1})


async def dump(request: Request) -> JSONResponse:
    return JSONResponse({key: {"value": v, "version": n} for key, (v, n) in data.items()})


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/kv", dump),
            Route("/kv/{key:path}", read, methods=["GET"]),
            Route("/kv/{key:path}", write, methods=["PUT"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
