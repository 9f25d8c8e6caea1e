"""controller: rolls each app's new release out as a canary, step by step.

The router splits each app's traffic between its stable release and its canary (and a
baseline: a fresh copy of stable that takes as much traffic as the canary). When a new canary
is deployed, the router lists its rollout as "progressing"; the controller then gives the
canary a larger share of the traffic, step by step, and in the end promotes it (it takes
all the traffic) or rolls it back (it takes none). Rollouts of different apps run side by side.

Each step is judged on what the router told Prometheus about the requests of that step alone:
once the canary has served enough of them, its error ratio and median latency are compared
with the baseline's over the same window. The baseline, not stable: stable serves the rest of
the traffic, and on a busy machine it is slower for that alone. The median, not p99: over a
few dozen requests p99 is the slowest one, and a single hiccup would decide the verdict. A
canary worse than the baseline by more than a margin is rolled back at once; one that holds
up at every step is promoted.

Wrong: each step compares the canary's latency with the baseline's, and nothing else: errors come
back fast, so a canary that fails a request in five looks as quick as the baseline, and is
promoted.
Rejected by: test_2_a_failing_canary_is_rolled_back_early,
    test_4_a_canary_that_fails_only_under_load_is_caught
"""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from services import promql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STEPS = (25, 50)  # the canary's share of the app's traffic, in %, before it takes it all
MIN_REQUESTS = 10  # canary requests a step must have served before it is judged
ERROR_MARGIN = 0.05  # the canary may fail 5 points more of its requests than the baseline...
LATENCY_MARGIN = 0.15  # ...and its median latency may be 150 ms above: more is a regression
STEP_TIMEOUT = 30.0  # seconds a step waits for MIN_REQUESTS: no evidence by then, no promotion
POLL_SECONDS = 0.25  # Prometheus scrapes the router every 0.25 s: no news sooner

router = httpx.AsyncClient(base_url=os.environ["ROUTER_URL"], timeout=5.0)


@dataclass(frozen=True)
class Health:
    requests: float
    error_ratio: float
    median: float  # seconds


async def health(app: str, version: str, window: str) -> Health:
    """What the router saw of one version of the app over the last `window`."""
    where = f'app="{app}", version="{version}"'
    requests = await promql.value(f"sum(increase(router_requests_total{{{where}}}[{window}]))")
    if not requests:
        return Health(0.0, 0.0, 0.0)
    errors = await promql.value(
        f'sum(increase(router_requests_total{{{where}, code="5xx"}}[{window}]))'
    )
    median = await promql.value(
        "histogram_quantile(0.5, sum by (le) "
        f"(increase(router_request_duration_seconds_bucket{{{where}}}[{window}])))"
    )
    return Health(requests, (errors or 0.0) / requests, median or 0.0)


async def verdict(app: str, since: float) -> bool | None:
    """True if the canary holds up since `since` (the step's start), False if it is worse than
    the baseline, None while it has served too few requests to tell."""
    window = f"{max(1, int((time.time() - since) * 1000))}ms"
    try:
        canary = await health(app, "canary", window)
        if canary.requests < MIN_REQUESTS:
            return None
        baseline = await health(app, "baseline", window)
    except httpx.HTTPError:
        return None  # Prometheus did not answer: ask again
    return canary.median <= baseline.median + LATENCY_MARGIN


async def roll_out(app: str) -> None:
    for weight in STEPS:
        await router.put(f"/_rollouts/{app}/weight", json={"weight": weight})
        since = time.time()
        healthy = None
        while healthy is None and time.time() - since < STEP_TIMEOUT:
            await asyncio.sleep(POLL_SECONDS)
            healthy = await verdict(app, since)
        if not healthy:
            await router.post(f"/_rollouts/{app}/rollback")
            return
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
