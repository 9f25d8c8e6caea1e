"""The search API: finds products for a query. Two replicas of this file (api-1 and api-2) run
behind a round-robin load balancer. Every client names itself in the X-Client header (the name
of its API key).

Each client may search RATE times a second, in bursts of up to BURST: a token bucket per client.
A search beyond that is refused with 429 Too Many Requests, and Retry-After tells the client how
many seconds to wait before it tries again.

The load balancer spreads a client's searches evenly over the replicas, so each replica sees
1/REPLICAS of them: each one keeps a bucket with 1/REPLICAS of the quota, and together they
hand out exactly RATE a second.

Wrong: each replica hands out a fixed share of the quota, which is only right while exactly two
replicas serve; with one the client gets half its quota and half its burst, with three one and a
half times both.
Rejected by: test_2_quota_holds_when_replicas_change, test_5_a_fresh_client_gets_its_burst,
test_6_no_more_than_a_bucket_at_once
"""

import asyncio
import math
import os
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RATE = 10.0  # searches per second, per client: the quota
BURST = 10.0  # searches a client may make at once after a quiet spell
WORKERS = 2  # searches one replica runs at the same time
SEARCH_TIME = 0.05  # seconds one search takes in the index
REPLICAS = 2  # api-1 and api-2 behind the load balancer

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


class TokenBucket:
    """A bucket of tokens per client, refilled at `rate` a second up to `burst`. A request
    takes one token; with no token left, it is refused."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def take(self, client: str) -> float:
        """Take a token for `client`: 0.0 if it got one, else the seconds until one is there."""
        now = time.time()
        tokens, when = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        if tokens >= 1:
            self.buckets[client] = (tokens - 1, now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1 - tokens) / self.rate


limiter = TokenBucket(RATE / REPLICAS, BURST / REPLICAS)
workers = asyncio.Semaphore(WORKERS)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def search(request: Request) -> JSONResponse:
    client = request.headers.get("x-client", "anonymous")
    wait = limiter.take(client)
    if wait > 0:
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


app = Starlette(routes=[Route("/health", health), Route("/search", search)])

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
