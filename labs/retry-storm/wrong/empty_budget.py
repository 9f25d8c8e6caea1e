"""The quote gateway: checkout asks it for the price of an item, and it asks pricing.

    POST /quote  {"call_id": "q-17", "item": "kettle"}  ->  200 {"call_id", "item", "price"}
                                                         or 503 / 504 {"error": ...}

Every call gets an answer within DEADLINE. Pricing gets at most ATTEMPTS tries per call,
spaced by a random, growing wait, and never more retries than the retry budget allows.

Wrong: the retry budget starts empty: the gateway has no reserve for a burst of failures until
it has served many calls.
Rejected by: test_2_retries_back_off, test_3_retries_are_jittered,
    test_4_a_lost_answer_is_retried_in_time
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
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

DEADLINE = 2.0  # seconds: every call is answered within this, with a price or an error
ATTEMPTS = 4  # per call: the first try and up to 3 retries
# Full jitter: before retry n, wait a random time in [0, min(1 s, 0.15 s * 2**(n-1))].
BACKOFF = wait_random_exponential(multiplier=0.15, max=1.0)

# Pricing answers in a few milliseconds; an answer that takes half a second is not coming.
pricing = httpx.AsyncClient(
    base_url=os.environ["PRICING_URL"], timeout=httpx.Timeout(0.5, connect=0.25)
)


class PricingFailed(Exception):
    """Pricing did not give a price: no answer in time, or a 5xx. Worth another try."""


class RetryBudget:
    """Retries may add at most `ratio` to the calls, plus a `reserve` saved up for bursts.

    Each call earns `ratio` of a token (up to `reserve`), each retry spends a whole one. When
    pricing fails everything, the gateway sends it little more than one try per call.
    """

    def __init__(self, ratio: float = 0.2, reserve: float = 60.0) -> None:
        self.ratio = ratio
        self.reserve = reserve
        self.tokens = 0.0

    def earn(self) -> None:
        self.tokens = min(self.reserve, self.tokens + self.ratio)

    def exhausted(self, retry_state: RetryCallState) -> bool:
        """A tenacity stop condition: stop when no token is left, else spend one on the retry."""
        if self.tokens < 1.0:
            return True
        self.tokens -= 1.0
        return False


budget = RetryBudget()


async def ask_pricing(body: object) -> httpx.Response:
    try:
        response = await pricing.post("/price", json=body)
    except httpx.TransportError as exc:
        raise PricingFailed(f"no answer ({type(exc).__name__})") from exc
    if response.status_code >= 500:
        raise PricingFailed(f"HTTP {response.status_code}")
    return response


async def quote(request: Request) -> JSONResponse:
    body = await request.json()
    budget.earn()
    retrying = AsyncRetrying(
        # The budget comes last: it spends a token only when the other conditions allow a retry.
        stop=stop_after_attempt(ATTEMPTS) | budget.exhausted,
        wait=BACKOFF,
        retry=retry_if_exception_type(PricingFailed),
        reraise=True,
    )
    try:
        async with asyncio.timeout(DEADLINE):
            response = await retrying(ask_pricing, body)
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
