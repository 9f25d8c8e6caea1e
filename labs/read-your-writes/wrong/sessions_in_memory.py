"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica
when it has caught up with the session, else to the primary.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Each session gets an id in its Session-Token; the api remembers, per id, the newest log position
the session has seen, and sends a read to the replica only if the replica has reached it.

Wrong: the sessions' positions live in the api's memory, so a restart forgets them and a
session's next read goes to a replica that lacks its write.
Rejected by: test_5_a_session_survives_an_api_restart
"""

import os
import uuid

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

primary = httpx.AsyncClient(base_url=os.environ["PRIMARY_URL"], timeout=5.0)
replica = httpx.AsyncClient(base_url=os.environ["REPLICA_URL"], timeout=5.0)

sessions: dict[str, int] = {}  # session id -> newest log position it has seen


def session_of(request: Request) -> str:
    return request.headers.get("Session-Token") or uuid.uuid4().hex


def reply(answer: httpx.Response, session: str) -> JSONResponse:
    body = answer.json()
    if answer.status_code == 200:
        sessions[session] = max(sessions.get(session, 0), body["written_at"])
    return JSONResponse(body, status_code=answer.status_code, headers={"Session-Token": session})


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return reply(answer, session_of(request))


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    session = session_of(request)
    answer = await replica.get(f"/kv/{key}")
    if int(answer.headers["Log-Position"]) < sessions.get(session, 0):
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
