"""controller: rolls each app's new release out as a canary, step by step.

The router splits each app's traffic between its stable release and its canary (and a
baseline: a fresh copy of stable that takes as much traffic as the canary). When a new canary
is deployed, the router lists its rollout as "progressing"; the controller then gives the
canary a larger share of the traffic, step by step, and in the end promotes it (it takes
all the traffic) or rolls it back (it takes none). Rollouts of different apps run side by side.

Also correct: one loop drives every rollout, as a reconciler does: each turn it reads the
router's rollouts and moves each progressing one on by at most one step, judging a step with
ratio queries (errors over requests in one expression) once it has enough requests.
"""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from services import promql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STEPS = (25, 50)
MIN_REQUESTS = 10
ERROR_MARGIN = 0.05
LATENCY_MARGIN = 0.15

router = httpx.AsyncClient(base_url=os.environ["ROUTER_URL"], timeout=5.0)


def selector(app: str, version: str, more: str = "") -> str:
    return f'{{app="{app}", version="{version}"{more}}}'


async def judge(app: str, since: float) -> str | None:
    """ "next", "rollback", or None while the step has too few canary requests."""
    w = f"[{max(1, int((time.time() - since) * 1000))}ms]"
    count = await promql.value(f"sum(increase(router_requests_total{selector(app, 'canary')}{w}))")
    if count is None or count < MIN_REQUESTS:
        return None
    ratio, median = {}, {}
    for version in ("canary", "baseline"):
        errors = selector(app, version, ', code=~"5.."')
        ratio[version] = await promql.value(
            f"sum(increase(router_requests_total{errors}{w}))"
            f" / sum(increase(router_requests_total{selector(app, version)}{w}))"
        )
        median[version] = await promql.value(
            "histogram_quantile(0.5, sum by (le) (increase("
            f"router_request_duration_seconds_bucket{selector(app, version)}{w})))"
        )
    if (ratio["canary"] or 0.0) - (ratio["baseline"] or 0.0) > ERROR_MARGIN:
        return "rollback"
    if (median["canary"] or 0.0) - (median["baseline"] or 0.0) > LATENCY_MARGIN:
        return "rollback"
    return "next"


async def reconcile(steps: dict[str, tuple[int, float]]) -> None:
    """One turn: every progressing rollout moves on by at most one step."""
    rollouts = (await router.get("/_rollouts")).json()
    for app, rollout in rollouts.items():
        if rollout["state"] != "progressing":
            steps.pop(app, None)
            continue
        if app not in steps:
            await router.put(f"/_rollouts/{app}/weight", json={"weight": STEPS[0]})
            steps[app] = (0, time.time())
            continue
        step, since = steps[app]
        verdict = await judge(app, since)
        if verdict == "rollback":
            await router.post(f"/_rollouts/{app}/rollback")
        elif verdict == "next" and step + 1 < len(STEPS):
            await router.put(f"/_rollouts/{app}/weight", json={"weight": STEPS[step + 1]})
            steps[app] = (step + 1, time.time())
        elif verdict == "next":
            await router.post(f"/_rollouts/{app}/promote")


async def run() -> None:
    steps: dict[str, tuple[int, float]] = {}  # app -> (index of its step, when it began)
    while True:
        with contextlib.suppress(httpx.HTTPError):  # not answered: the next turn asks again
            await reconcile(steps)
        await asyncio.sleep(0.25)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    running = asyncio.create_task(run())
    yield
    running.cancel()


async def health_check(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/health", health_check)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
