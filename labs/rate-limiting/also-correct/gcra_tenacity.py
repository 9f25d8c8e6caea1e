"""The search API: finds products for a query. Two replicas of this file (api-1 and api-2) run
behind a round-robin load balancer. Every client names itself in the X-Client header (the name
of its API key).

Each client may search RATE times a second, in bursts of up to BURST: a token bucket per client.
A search beyond that is refused with 429 Too Many Requests, and Retry-After tells the client how
many seconds to wait before it tries again.

The limit is kept in the shared store as one timestamp per client (GCRA), not in this process:
the load balancer spreads a client's requests over every replica, and all of them must judge by
the same state. A write is a compare-and-set; tenacity reads and tries again on a conflict.

Also correct: GCRA (one theoretical arrival time per client) instead of a token bucket's tokens
and timestamp, and tenacity's retry decorator for the compare-and-set loop.
"""

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random

RATE = 10.0  # searches per second, per client: the quota
BURST = 10.0  # searches a client may make at once after a quiet spell
WORKERS = 2  # searches one replica runs at the same time
SEARCH_TIME = 0.05  # seconds one search takes in the index

CATALOGUE = [
    "espresso cups",
    "pour-over kettle",
    "burr grinder",
    "milk frother",
    "tamper",
    "french press",
    "cold brew jar",
    "coffee scale",
    "moka pot",
    "filter papers",
]

store = httpx.AsyncClient(base_url=os.environ["STORE_URL"], timeout=5.0, trust_env=False)


class Conflict(Exception):
    """Another replica wrote the key between our read and our write."""


class Gcra:
    """The generic cell rate algorithm: a token bucket kept as one number per client, the
    theoretical arrival time (TAT) of its next request if it sent them at exactly `rate`.
    A request may come up to `burst` intervals ahead of it; each one served pushes it one
    interval further. The TAT lives in the store, so every replica judges by the same one."""

    def __init__(self, rate: float, burst: float) -> None:
        self.interval = 1 / rate
        self.ahead = burst * self.interval  # how far ahead of its TAT a client may be

    @retry(
        retry=retry_if_exception_type(Conflict),
        wait=wait_random(0, 0.005),
        stop=stop_after_attempt(100),
        reraise=True,
    )
    async def take(self, client: str) -> float:
        """Serve `client` now: 0.0 if it may, else the seconds until it may."""
        key = f"/kv/gcra:{client}"
        read = (await store.get(key)).raise_for_status().json()
        now = time.time()
        tat = max(read["value"] or now, now) + self.interval
        if tat - self.ahead > now:
            return tat - self.ahead - now
        written = await store.put(key, json={"value": tat, "version": read["version"]})
        if written.status_code == 409:
            raise Conflict(key)
        written.raise_for_status()
        return 0.0


limiter = Gcra(RATE, BURST)
workers = asyncio.Semaphore(WORKERS)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def search(request: Request) -> JSONResponse:
    client = request.headers.get("x-client", "anonymous")
    wait = await limiter.take(client)
    if wait > 0:
        # Whole seconds (RFC 9110), rounded up: a client that waits this long finds a token.
        return JSONResponse(
            {"error": f"over the quota of {RATE:g} searches per second"},
            status_code=429,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    query = request.query_params.get("q", "")
    async with workers:
        await asyncio.sleep(SEARCH_TIME)  # the index lookup
    hits = [product for product in CATALOGUE if query in product]
    return JSONResponse({"client": client, "query": query, "hits": hits})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await store.aclose()


app = Starlette(routes=[Route("/health", health), Route("/search", search)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
