"""The quote gateway: checkout asks it for the price of an item, and it asks pricing.

    POST /quote  {"call_id": "q-17", "item": "kettle"}  ->  200 {"call_id", "item", "price"}
                                                         or 4xx as pricing answered it
                                                         or 503 / 504 {"error": ...}

Retries use "decorrelated jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"):
each wait is random between a base and three times the previous wait, capped.

Also correct: decorrelated jitter written by hand as a tenacity wait, instead of full jitter.
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
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

DEADLINE = 2.0
ATTEMPTS = 4
BASE = 0.05  # seconds
CAP = 0.8

pricing = httpx.AsyncClient(
    base_url=os.environ["PRICING_URL"], timeout=httpx.Timeout(0.5, connect=0.25)
)


class PricingFailed(Exception):
    """No answer in time, or a 5xx: worth another try."""


def decorrelated_jitter(retry_state: RetryCallState) -> float:
    """min(CAP, uniform(BASE, 3 * the previous wait)); the first previous wait is BASE."""
    previous = retry_state.upcoming_sleep or BASE  # tenacity keeps the last wait there
    return min(CAP, random.uniform(BASE, 3 * previous))


class Tokens:
    """A retry budget: each call adds 0.2 tokens (at most 60), each retry takes one."""

    def __init__(self) -> None:
        self.level = 60.0

    def add(self) -> None:
        self.level = min(60.0, self.level + 0.2)

    def empty(self, retry_state: RetryCallState) -> bool:
        if self.level < 1.0:
            return True
        self.level -= 1.0
        return False


tokens = Tokens()


async def ask_pricing(body: object) -> httpx.Response:
    try:
        response = await pricing.post("/price", json=body)
    except httpx.TransportError as exc:
        raise PricingFailed(type(exc).__name__) from exc
    if response.status_code >= 500:
        raise PricingFailed(f"HTTP {response.status_code}")
    return response


async def quote(request: Request) -> JSONResponse:
    body = await request.json()
    tokens.add()
    try:
        async with asyncio.timeout(DEADLINE):
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(ATTEMPTS) | tokens.empty,
                wait=decorrelated_jitter,
                retry=retry_if_exception_type(PricingFailed),
                reraise=True,
            ):
                with attempt:
                    response = await ask_pricing(body)
    except TimeoutError:
        return JSONResponse({"error": "pricing did not answer in time"}, status_code=504)
    except PricingFailed as exc:
        return JSONResponse({"error": f"pricing is unavailable: {exc}"}, status_code=503)
    return JSONResponse(response.json(), status_code=response.status_code)


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
