"""The recommender: picks products for a user. Owned by another team (and by the harness).

It writes down when each call arrives (wall-clock seconds, comparable across processes) and
shows the list on GET /calls, so the checks can count how often the frontend called it.
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

calls: list[float] = []


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def recommend(request: Request) -> JSONResponse:
    calls.append(time.time())
    user = request.query_params.get("user", "guest")
    start = int(hashlib.sha256(user.encode()).hexdigest(), 16) % len(CATALOGUE)
    items = [CATALOGUE[(start + i) % len(CATALOGUE)] for i in range(3)]
    return JSONResponse({"user": user, "items": items})


async def list_calls(request: Request) -> JSONResponse:
    return JSONResponse({"calls": calls})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/recommend", recommend),
        Route("/calls", list_calls),
    ]
)

if __name__ == "__main__":
    port = int(os.environ["PORT"])
    uvicorn.run(app, host=os.environ["HOST"], port=port, log_level="warning")
