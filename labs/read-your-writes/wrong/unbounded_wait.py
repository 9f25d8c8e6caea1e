"""api: the key-value API that clients call. Writes go to the primary; every read goes to the
replica, after waiting for it to catch up with the session.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Every answer carries a Session-Token, the newest log position the session has seen; the client
sends it back, and a read waits until the replica has applied the log up to it.

Wrong: it waits for the replica without a bound, so a read hangs for as long as replication
stalls.
Rejected by: test_4_a_stalled_replica_costs_a_bounded_wait,
    test_5_a_session_survives_an_api_restart
"""

import asyncio
import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

primary = httpx.AsyncClient(base_url=os.environ["PRIMARY_URL"], timeout=5.0)
replica = httpx.AsyncClient(base_url=os.environ["REPLICA_URL"], timeout=5.0)


def seen(request: Request) -> int:
    """The log position this session has seen: 0 for a new session (or a token we cannot read)."""
    token = request.headers.get("Session-Token", "")
    return int(token) if token.isdigit() else 0


def reply(answer: httpx.Response, session: int) -> JSONResponse:
    """The store's answer, with the session's token moved up to the write behind its value."""
    body = answer.json()
    token = max(session, body["written_at"]) if answer.status_code == 200 else session
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
    while int(answer.headers["Log-Position"]) < session:
        await asyncio.sleep(0.02)  # the replica is still applying the session's writes
        answer = await replica.get(f"/kv/{key}")
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
