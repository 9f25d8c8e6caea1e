"""The shop's frontend: the home page shows picks from the recommender, the profile page shows
the shopper's own details.

Endpoints are plain functions: Starlette runs each request on a worker thread, and the pool is
sized at startup like a deployment's `--threads`.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WORKER_THREADS = 16

# The recommender can take a while on a cold start (it loads its model on first use):
# give it time rather than show an empty shelf.
recommender = httpx.Client(base_url=os.environ["RECOMMENDER_URL"], timeout=30.0)

PROFILES = {
    "ada": {"name": "Ada", "city": "London", "orders": 12},
    "grace": {"name": "Grace", "city": "Arlington", "orders": 3},
}


def recommendations(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
    response = recommender.get("/recommend", params={"user": user})
    response.raise_for_status()
    return JSONResponse({"items": response.json()["items"]})


def profile(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
    details = PROFILES.get(user, {"name": user, "city": None, "orders": 0})
    return JSONResponse({"user": user, **details})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    yield
    recommender.close()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/recommendations", recommendations),
        Route("/profile", profile),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    port = int(os.environ["PORT"])
    uvicorn.run(app, host=os.environ["HOST"], port=port, log_level="warning")
