"""The search API: finds products for a query. Two replicas of this file (api-1 and api-2) run
behind a round-robin load balancer. Every client names itself in the X-Client header (the name
of its API key).

Each client may search RATE times a second, in bursts of up to BURST: a token bucket per client.
A search beyond that is refused with 429 Too Many Requests, and Retry-After tells the client how
many seconds to wait before it tries again.

The buckets live in the shared store, not in this process, so that every replica draws from the
same bucket; a compare-and-set makes each take atomic.

Wrong: the refill is never capped at BURST, so a client that was quiet for a while saves up more
than a bucket and spends it all at once.
Rejected by: test_6_no_more_than_a_bucket_at_once
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


class SharedTokenBucket:
    """A bucket of tokens per client, refilled at `rate` a second up to `burst`, kept in the
    store so that every replica takes from the same one. A request takes one token; with no
    token left, it is refused.

    The state is the tokens left at the last take and the time of that take; the refill since
    is computed on every read. (The replicas share one clock here; across machines, clocks
    drift, and a bucket would take its time from one place, such as the store.)
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst

    async def take(self, client: str) -> float:
        """Take a token for `client`: 0.0 if it got one, else the seconds until one is there."""
        key = f"/kv/bucket:{client}"
        while True:
            read = (await store.get(key)).raise_for_status().json()
            now = time.time()
            state = read["value"] or {"tokens": self.burst, "when": now}
            tokens = state["tokens"] + (now - state["when"]) * self.rate
            if tokens < 1:
                return (1 - tokens) / self.rate
            written = await store.put(
                key, json={"value": {"tokens": tokens - 1, "when": now}, "version": read["version"]}
            )
            if written.status_code != 409:
                written.raise_for_status()
                return 0.0
            # Another replica took a token since we read: read the bucket again.


limiter = SharedTokenBucket(RATE, BURST)
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
