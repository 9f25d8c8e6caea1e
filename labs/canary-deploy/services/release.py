"""release: one release of every app, the stable one or the canary (VERSION). Owned by the lab,
not by you.

GET /{app}/item     200 {"app", "version", "item"}, unless this release of the app is broken
PUT /_faults        {app: fault}: how this release of each app is broken (the harness builds
                    each canary's flaw in, and makes stable's wobble); {} mends everything

A fault is {"fail_every": n} (every n-th request answers 500), {"delay": s} (every request
takes s seconds more), or {"fail_from_share": p} (every request answers 503 while this release
takes p % or more of the app's traffic: a pool sized for less runs dry). The router says which
share a release takes in each request's X-Traffic-Share header: the load a release sees is its
share of the app's users, whatever rate a busy test machine manages to send.
"""

import asyncio
import os
from collections import defaultdict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

VERSION = os.environ["VERSION"]

faults: dict[str, dict[str, Any]] = {}
served: defaultdict[str, int] = defaultdict(int)


async def item(request: Request) -> JSONResponse:
    app = request.path_params["app"]
    served[app] += 1
    fault = faults.get(app, {})
    share = int(request.headers.get("x-traffic-share", "0"))
    if "fail_from_share" in fault and share >= int(fault["fail_from_share"]):
        return JSONResponse({"error": "no connection left in the pool"}, status_code=503)
    if "delay" in fault:
        await asyncio.sleep(float(fault["delay"]))
    if "fail_every" in fault and served[app] % int(fault["fail_every"]) == 0:
        return JSONResponse({"error": "internal error"}, status_code=500)
    return JSONResponse({"app": app, "version": VERSION, "item": served[app]})


async def set_faults(request: Request) -> JSONResponse:
    faults.clear()
    faults.update(await request.json())
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
