"""api: the key-value API that clients call. Every request goes to the primary: the replica
may be behind, and a client must see what it just wrote.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Wrong: it never reads from the replica, so the primary carries every read, lag or no lag.
Rejected by: test_3_the_replica_serves_most_reads_when_lag_is_low
"""

import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

primary = httpx.AsyncClient(base_url=os.environ["PRIMARY_URL"], timeout=5.0)
replica = httpx.AsyncClient(base_url=os.environ["REPLICA_URL"], timeout=5.0)


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return JSONResponse(answer.json(), status_code=answer.status_code)


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    # The replica can be behind the primary; the primary always has the newest value.
    answer = await primary.get(f"/kv/{key}")
    return JSONResponse(answer.json(), status_code=answer.status_code)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", write, methods=["PUT"]),
        Route("/kv/{key}", read, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
