"""lock: the lease service. One lease, for the right to write to storage; one holder at a time.

Owned by the lab, not by you. A worker asks for the lease; it gets it if nobody holds it, or if
the holder's lease ran out (by the lock's own clock). Each new holder gets a token one higher
than the last: a fencing token. Asking again renews the lease with the same token, also after
it ran out if nobody took it meanwhile: the token changes exactly when the holder does. The
checks read GET /grants: every grant and renewal, with its token, its holder and when
(wall-clock seconds).

    POST /lease          {"worker": "worker-a"} -> 200 {"token": 99, "ttl": 1.0}
                         or 409 {"holder": "worker-b", "expires_in": 0.4}
    POST /lease/release  {"worker": "worker-a"} -> 200
    GET  /lease          the current holder, token and seconds left (null holder when free)
    GET  /grants         every grant and renewal, in order
"""

import os
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

TTL = float(os.environ.get("LEASE_TTL", "1.0"))  # seconds a lease lasts without renewal
# This lock has handed out leases long before the run: its tokens are well past 1.
next_token = int(os.environ.get("FIRST_TOKEN", "1"))
holder: str | None = None
token = 0
expires = 0.0  # time.monotonic() when the current lease runs out
grants: list[dict[str, object]] = []


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def take(request: Request) -> JSONResponse:
    global holder, token, expires, next_token
    worker = str((await request.json())["worker"])
    now = time.monotonic()
    if holder is not None and holder != worker and now < expires:
        return JSONResponse(
            {"holder": holder, "expires_in": round(expires - now, 3)}, status_code=409
        )
    kind = "renew"
    if holder != worker:  # a new holder: a new, higher token
        holder, token, kind = worker, next_token, "grant"
        next_token += 1
    expires = now + TTL
    grants.append({"kind": kind, "worker": worker, "token": token, "at": time.time(), "ttl": TTL})
    return JSONResponse({"token": token, "ttl": TTL})


async def release(request: Request) -> JSONResponse:
    global holder
    worker = str((await request.json())["worker"])
    if holder == worker:
        holder = None
        grants.append({"kind": "release", "worker": worker, "token": token, "at": time.time()})
    return JSONResponse({"released": holder is None})


async def current(request: Request) -> JSONResponse:
    left = expires - time.monotonic()
    if holder is None or left <= 0:
        return JSONResponse({"holder": None})
    return JSONResponse({"holder": holder, "token": token, "expires_in": round(left, 3)})


async def list_grants(request: Request) -> JSONResponse:
    return JSONResponse(grants)


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/lease", take, methods=["POST"]),
            Route("/lease/release", release, methods=["POST"]),
            Route("/lease", current, methods=["GET"]),
            Route("/grants", list_grants),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
