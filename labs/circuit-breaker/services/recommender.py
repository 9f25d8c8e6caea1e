"""The recommender: picks products for a user. Owned by another team (and by the harness).

It writes down every call it receives: when it arrived (wall-clock seconds, comparable across
processes), for which user, and the picks it answered (null for a call it failed). The checks
read that record on GET /calls to tell real picks from invented ones and to count the
frontend's calls. POST /stray {"every": n} makes it fail every n-th call with a 500 (0: none),
the way a flaky host fails a few calls among good ones.
"""

import hashlib
import os
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CATALOGUE = [
    "espresso-cups",
    "pour-over-kettle",
    "burr-grinder",
    "milk-frother",
    "tamper",
    "french-press",
    "cold-brew-jar",
    "scale",
    "moka-pot",
    "filter-papers",
]

calls: list[dict[str, object]] = []
stray_every = 0
received = 0


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def recommend(request: Request) -> JSONResponse:
    global received
    received += 1
    user = request.query_params.get("user", "guest")
    call: dict[str, object] = {"time": time.time(), "user": user, "items": None}
    calls.append(call)
    if stray_every and received % stray_every == 0:
        return JSONResponse({"error": "model server hiccup"}, status_code=500)
    start = int(hashlib.sha256(user.encode()).hexdigest(), 16) % len(CATALOGUE)
    call["items"] = [CATALOGUE[(start + i) % len(CATALOGUE)] for i in range(3)]
    return JSONResponse({"user": user, "items": call["items"]})


async def list_calls(request: Request) -> JSONResponse:
    return JSONResponse({"calls": calls})


async def stray(request: Request) -> JSONResponse:
    global stray_every, received
    stray_every = int((await request.json())["every"])
    received = 0
    return JSONResponse({"every": stray_every})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/recommend", recommend),
        Route("/calls", list_calls),
        Route("/stray", stray, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    port = int(os.environ["PORT"])
    uvicorn.run(app, host=os.environ["HOST"], port=port, log_level="warning")
