"""controller: rolls each app's new release out as a canary, step by step.

The router splits each app's traffic between its stable release and its canary (and a
baseline: a fresh copy of stable that takes as much traffic as the canary). When a new canary
is deployed, the router lists its rollout as "progressing"; the controller then gives the
canary a larger share of the traffic, step by step, and in the end promotes it (it takes
all the traffic) or rolls it back (it takes none). Rollouts of different apps run side by side.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STEPS = (25, 50)  # the canary's share of the app's traffic, in %, before it takes it all
BAKE_SECONDS = 1.0  # how long each step runs before the next

router = httpx.AsyncClient(base_url=os.environ["ROUTER_URL"], timeout=5.0)


async def roll_out(app: str) -> None:
    for weight in STEPS:
        await router.put(f"/_rollouts/{app}/weight", json={"weight": weight})
        await asyncio.sleep(BAKE_SECONDS)  # let it bake
    await router.post(f"/_rollouts/{app}/promote")


async def watch() -> None:
    """Start a rollout for every canary the router lists as progressing."""
    started: dict[str, asyncio.Task] = {}
    while True:
        try:
            rollouts = (await router.get("/_rollouts")).json()
        except httpx.HTTPError:
            rollouts = {}  # the router is not up yet: ask again
        for app, rollout in rollouts.items():
            if rollout["state"] == "progressing" and app not in started:
                started[app] = asyncio.create_task(roll_out(app))
        await asyncio.sleep(0.1)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    watching = asyncio.create_task(watch())
    yield
    watching.cancel()


async def health_check(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/health", health_check)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
