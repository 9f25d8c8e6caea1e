"""The quote gateway: checkout asks it for the price of an item, and it asks pricing.

    POST /quote  {"call_id": "q-17", "item": "kettle"}  ->  200 {"call_id", "item", "price"}
                                                         or 4xx as pricing answered it
                                                         or 503 / 504 {"error": ...}

A plain retry loop: a timeout on every attempt, a deadline on the whole quote, at most four
attempts with a random wait that doubles its ceiling each time, and a budget of retries.

Also correct: a hand-written loop instead of tenacity, full jitter with a 0.2 s base (the top
of the range), and a budget counted in whole calls (five calls pay for one retry).
"""

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEADLINE = 2.0
ATTEMPTS = 4
BASE = 0.2  # seconds: the ceiling of the first wait; it doubles at each retry
CAP = 1.0
CALLS_PER_RETRY = 5  # every fifth call earns one retry ...
SAVED_RETRIES = 60  # ... and at most this many are saved up

pricing = httpx.AsyncClient(
    base_url=os.environ["PRICING_URL"], timeout=httpx.Timeout(0.5, connect=0.25)
)

# Counted in calls: a call adds 1, a retry costs CALLS_PER_RETRY.
credit = CALLS_PER_RETRY * SAVED_RETRIES


def may_retry() -> bool:
    global credit
    if credit < CALLS_PER_RETRY:
        return False
    credit -= CALLS_PER_RETRY
    return True


async def quote(request: Request) -> JSONResponse:
    global credit
    body = await request.json()
    credit = min(credit + 1, CALLS_PER_RETRY * SAVED_RETRIES)
    problem = "no attempt made"
    try:
        async with asyncio.timeout(DEADLINE):
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    response = await pricing.post("/price", json=body)
                except httpx.TransportError as exc:
                    problem = f"no answer ({type(exc).__name__})"
                else:
                    if response.status_code < 500:
                        return JSONResponse(response.json(), status_code=response.status_code)
                    problem = f"HTTP {response.status_code}"
                if attempt == ATTEMPTS or not may_retry():
                    break
                await asyncio.sleep(random.uniform(0, min(CAP, BASE * 2 ** (attempt - 1))))
    except TimeoutError:
        return JSONResponse({"error": "pricing did not answer in time"}, status_code=504)
    return JSONResponse({"error": f"pricing is unavailable: {problem}"}, status_code=503)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await pricing.aclose()


app = Starlette(
    routes=[Route("/health", health), Route("/quote", quote, methods=["POST"])],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
