"""release: one release of every app, the stable one or the canary (VERSION). Owned by the lab,
not by you.

GET /{app}/item     200 {"app", "version", "item"}, unless this release of the app is broken
PUT /_faults        {app: fault}: how this release of each app is broken (the harness builds
                    each canary's flaw in, and makes stable's wobble); {} mends everything

A fault is {"fail_every": n} (every n-th request answers 500), {"delay": s} (every request
takes s seconds more), or {"overload": n} (while more than n requests arrived in the last
half second, every request answers 503: a pool that is exhausted under load).
"""

import asyncio
import os
import time
from collections import defaultdict, deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

VERSION = os.environ["VERSION"]
LOAD_WINDOW = 0.5  # seconds over which "overload" counts arrivals

faults: dict[str, dict[str, Any]] = {}
served: defaultdict[str, int] = defaultdict(int)
arrivals: defaultdict[str, deque[float]] = defaultdict(deque)


def overloaded(app: str, limit: int) -> bool:
    now = time.monotonic()
    recent = arrivals[app]
    recent.append(now)
    while recent and recent[0] < now - LOAD_WINDOW:
        recent.popleft()
    return len(recent) > limit


async def item(request: Request) -> JSONResponse:
    app = request.path_params["app"]
    served[app] += 1
    fault = faults.get(app, {})
    if "overload" in fault and overloaded(app, int(fault["overload"])):
        return JSONResponse({"error": "no connection left in the pool"}, status_code=503)
    if "delay" in fault:
        await asyncio.sleep(float(fault["delay"]))
    if "fail_every" in fault and served[app] % int(fault["fail_every"]) == 0:
        return JSONResponse({"error": "internal error"}, status_code=500)
    return JSONResponse({"app": app, "version": VERSION, "item": served[app]})


async def set_faults(request: Request) -> JSONResponse:
    faults.clear()
    faults.update(await request.json())
    arrivals.clear()
    return JSONResponse(faults)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "version": VERSION})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/_faults", set_faults, methods=["PUT"]),
        Route("/{app}/item", item),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
