"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica,
which takes that load off the primary, unless the replica is behind what the session has seen.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Every answer carries a Session-Token: the newest log position the session has seen, that of its
last write or of the newest value it has read. The client sends it back with its next request;
a read goes to the replica only if the replica has applied the log up to that position.
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


def seen(request: Request) -> int:
    """The log position this session has seen: 0 for a new session (or a token we cannot read)."""
    token = request.headers.get("Session-Token", "")
    return int(token) if token.isdigit() else 0


def reply(answer: httpx.Response, session: int) -> JSONResponse:
    """The store's answer, with the session's token moved up to the write behind its value (the
    write just made, or the one that set the value just read)."""
    body = answer.json()
    token = max(session, body["written_at"]) if answer.status_code == 200 else session
    return JSONResponse(body, status_code=answer.status_code, headers={"Session-Token": str(token)})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return reply(answer, seen(request))


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    session = seen(request)
    try:
        answer = await replica.get(f"/kv/{key}")
        if answer.status_code == 200 and int(answer.headers["Log-Position"]) >= session:
            return reply(answer, session)
    except httpx.HTTPError:
        pass  # the replica is unreachable: the primary can serve this read
    # The replica has not applied the session's last write (or the newest state it read) yet.
    answer = await primary.get(f"/kv/{key}")
    return reply(answer, session)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", write, methods=["PUT"]),
        Route("/kv/{key}", read, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
