"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica
when it has caught up with the session, else to the primary.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Every answer carries a Session-Token, the log position of the store that answered; the client
sends it back, and a read goes to the replica only if the replica has applied the log up to it.

Wrong: a read from the primary moves the token to the primary's whole log position, not to the
value's write, so a session that once reads from the primary chases a replica that never
catches up while others keep writing.
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


def seen(request: Request) -> int:
    token = request.headers.get("Session-Token", "")
    return int(token) if token.isdigit() else 0


def reply(answer: httpx.Response, session: int) -> JSONResponse:
    """The store's answer; the session has now seen the store's state up to its Log-Position."""
    token = session
    if answer.status_code == 200:
        token = max(session, int(answer.headers["Log-Position"]))
    return JSONResponse(
        answer.json(), status_code=answer.status_code, headers={"Session-Token": str(token)}
    )


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return reply(answer, seen(request))


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    session = seen(request)
    answer = await replica.get(f"/kv/{key}")
    if int(answer.headers["Log-Position"]) < session:
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
