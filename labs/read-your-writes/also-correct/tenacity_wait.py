"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica,
which takes that load off the primary, once it has caught up with the session.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

Every answer carries a Session-Token, the newest log position the session has seen. A read
asks the replica again and again for up to REPLICA_WAIT seconds until it has applied that
position; if it does not in time, the primary answers.

Also correct: waits a bounded time for the replica (a tenacity retry policy) before it falls
back to the primary, so a lagging replica still serves the read when it catches up quickly.
"""

import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

REPLICA_WAIT = 0.4  # seconds a read may wait for the replica before asking the primary

primary = httpx.AsyncClient(base_url=os.environ["PRIMARY_URL"], timeout=5.0)
replica = httpx.AsyncClient(base_url=os.environ["REPLICA_URL"], timeout=5.0)


def session_position(request: Request) -> int:
    try:
        return max(0, int(request.headers.get("Session-Token", "0")))
    except ValueError:
        return 0


@retry(
    retry=retry_if_result(lambda answer: answer is None),
    stop=stop_after_delay(REPLICA_WAIT),
    wait=wait_fixed(0.02),
    retry_error_callback=lambda state: None,
)
async def from_replica(key: str, position: int) -> httpx.Response | None:
    """The replica's answer once it has applied the log up to `position`; None until then."""
    answer = await replica.get(f"/kv/{key}")
    answer.raise_for_status()
    return answer if int(answer.headers["Log-Position"]) >= position else None


def answer_with_token(answer: httpx.Response, position: int) -> JSONResponse:
    body = answer.json()
    if answer.status_code == 200:
        position = max(position, int(body["written_at"]))
    return JSONResponse(
        body, status_code=answer.status_code, headers={"Session-Token": str(position)}
    )


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return answer_with_token(answer, session_position(request))


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    position = session_position(request)
    try:
        answer = await from_replica(key, position)
    except httpx.HTTPError:
        answer = None
    if answer is None:
        answer = await primary.get(f"/kv/{key}")
    return answer_with_token(answer, position)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", write, methods=["PUT"]),
        Route("/kv/{key}", read, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
