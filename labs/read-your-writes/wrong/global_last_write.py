"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica
once it has applied the last write the api made, else to the primary.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Wrong: the last write's position is one number for the whole api process, not per session: any
session's write sends every session to the primary, and a restart forgets it.
Rejected by: test_3_the_replica_serves_most_reads_when_lag_is_low,
    test_5_a_session_survives_an_api_restart
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

last_write = 0  # log position of the newest write this api made


async def write(request: Request) -> JSONResponse:
    global last_write
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    if answer.status_code == 200:
        last_write = max(last_write, int(answer.headers["Log-Position"]))
    return JSONResponse(answer.json(), status_code=answer.status_code)


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    answer = await replica.get(f"/kv/{key}")
    if int(answer.headers["Log-Position"]) < last_write:
        answer = await primary.get(f"/kv/{key}")  # the replica is behind our last write
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
