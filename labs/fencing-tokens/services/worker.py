"""worker: a job that writes to storage while it holds the lease. Owned by the lab, not by you.

For each write it is asked for, the worker takes the lease from the lock (or renews the one it
holds), then calls `store_client.save` (yours) with an HTTP client for storage. It writes down
every attempt: the lease token it held, every request your code sent through that client, and
what storage answered. The checks read that record on GET /attempts.

The checks can stop a write at the worst moment: with "hold", the first write request your code
sends (PUT, POST, PATCH or DELETE) waits, after every check your code made and before a byte
leaves, until POST /release. That is where the checks pause the process (SIGSTOP).

    POST /write          {"key": "x", "value": "a1", "hold": false} -> the attempt
    GET  /breakpoint     {"held": true} while a write waits there
    POST /release        lets the held write go
    POST /lease/release  gives the lease back to the lock
    GET  /attempts       every attempt, in order
"""

import os
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos
from services import store_client
from services.lease import Lease

NAME = os.environ.get("SERVICE_NAME", "worker")
LOCK_URL = os.environ["LOCK_URL"]
STORAGE_URL = os.environ["STORAGE_URL"]
WRITES = {"PUT", "POST", "PATCH", "DELETE"}
HOLD_AT_MOST = 30.0  # seconds a held write waits for /release before it goes anyway

attempts: list[dict[str, Any]] = []
held = threading.Event()
released = threading.Event()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def take_lease() -> tuple[Lease | None, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5.0) as lock:
        response = await lock.post(f"{LOCK_URL}/lease", json={"worker": NAME})
    answer = response.json()
    if response.status_code != 200:
        return None, answer
    return Lease(int(answer["token"]), time.monotonic() + float(answer["ttl"])), answer


async def write(request: Request) -> JSONResponse:
    body = await request.json()
    attempt: dict[str, Any] = {
        "worker": NAME,
        "key": body["key"],
        "value": body["value"],
        "hold": bool(body.get("hold")),
        "token": None,
        "requests": [],
        "returned": None,
        "error": None,
    }
    attempts.append(attempt)
    lease, answer = await take_lease()
    if lease is None:
        attempt["error"] = f"no lease: the lock answered {answer}"
        return JSONResponse(attempt, status_code=409)
    attempt["token"] = lease.token
    if attempt["hold"]:
        held.clear()
        released.clear()
    returned = await run_in_threadpool(save, attempt, lease)
    attempt["returned"] = repr(returned)
    return JSONResponse(attempt)


def save(attempt: dict[str, Any], lease: Lease) -> object:
    """Call the learner's save() with a client that records (and may hold) what it sends."""
    stop_here = [attempt["hold"]]

    def on_request(request: httpx.Request) -> None:
        if request.method in WRITES and stop_here[0]:
            stop_here[0] = False
            held.set()
            released.wait(HOLD_AT_MOST)
            held.clear()
        attempt["requests"].append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": {k: v for k, v in request.headers.items() if k.lower() != "host"},
                "body": request.content.decode(errors="replace"),
                "sent_at": time.time(),
                "status": None,
            }
        )

    def on_response(response: httpx.Response) -> None:
        response.read()
        attempt["requests"][-1]["status"] = response.status_code
        attempt["requests"][-1]["answer"] = response.text[:200]

    hooks = {"request": [on_request], "response": [on_response]}
    with httpx.Client(base_url=STORAGE_URL, timeout=5.0, event_hooks=hooks) as http:
        try:
            return store_client.save(http, attempt["key"], attempt["value"], lease)
        except Exception as exc:  # the learner's code failed: the record says how
            attempt["error"] = f"{type(exc).__name__}: {exc}"
            return None


async def breakpoint_state(request: Request) -> JSONResponse:
    return JSONResponse({"held": held.is_set()})


async def release(request: Request) -> JSONResponse:
    released.set()
    return JSONResponse({"released": True})


async def give_back(request: Request) -> JSONResponse:
    async with httpx.AsyncClient(timeout=5.0) as lock:
        response = await lock.post(f"{LOCK_URL}/lease/release", json={"worker": NAME})
    return JSONResponse(response.json(), status_code=response.status_code)


async def list_attempts(request: Request) -> JSONResponse:
    return JSONResponse(attempts)


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/write", write, methods=["POST"]),
            Route("/breakpoint", breakpoint_state),
            Route("/release", release, methods=["POST"]),
            Route("/lease/release", give_back, methods=["POST"]),
            Route("/attempts", list_attempts),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
