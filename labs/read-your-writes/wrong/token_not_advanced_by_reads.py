"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica
once it has applied the session's last write, else to the primary.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

A write's answer carries a Session-Token, the log position of that write; the client sends it
back, and a read goes to the replica only if the replica has applied the log up to it.

Wrong: the token moves only on writes, so after a read from the primary, a later read from the
replica can return an older value than the session already saw.
Rejected by: test_2_monotonic_reads
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


def last_write(request: Request) -> int:
    token = request.headers.get("Session-Token", "")
    return int(token) if token.isdigit() else 0


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    headers = {}
    if answer.status_code == 200:
        headers["Session-Token"] = answer.headers["Log-Position"]
    return JSONResponse(answer.json(), status_code=answer.status_code, headers=headers)


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    answer = await replica.get(f"/kv/{key}")
    if int(answer.headers["Log-Position"]) < last_write(request):
        answer = await primary.get(f"/kv/{key}")  # the replica lacks the session's write
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
