"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica
when it has caught up with the session.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Every answer carries a Session-Token, the newest log position the session has seen; the client
sends it back, and a read goes to the replica only if the replica's Log-Position has reached it.

Wrong: it compares the replica's Log-Position header with the token as strings, so "999" counts
as caught up with "1003".
Rejected by: test_1_read_your_writes
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


def seen(request: Request) -> str:
    return request.headers.get("Session-Token", "0")


def reply(answer: httpx.Response, session: str) -> JSONResponse:
    """The store's answer, with the session's token moved up to the write behind its value."""
    body = answer.json()
    token = max(int(session), body["written_at"]) if answer.status_code == 200 else session
    return JSONResponse(body, status_code=answer.status_code, headers={"Session-Token": str(token)})


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return reply(answer, seen(request))


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    session = seen(request)
    answer = await replica.get(f"/kv/{key}")
    if answer.headers["Log-Position"] >= session:
        return reply(answer, session)
    answer = await primary.get(f"/kv/{key}")  # the replica is behind this session
    return reply(answer, session)


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
