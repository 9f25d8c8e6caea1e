"""The search API: finds products for a query. Two replicas of this file (api-1 and api-2) run
behind a round-robin load balancer. Every client names itself in the X-Client header (the name
of its API key).

Each client may search RATE times a second: a window of one second per client, which starts at
the client's first search, not at the clock's second, so that no client can time its searches
to the clock. A search beyond that is refused with 429 Too Many Requests, and Retry-After tells
the client how many seconds to wait before it tries again.

The windows live in the shared store, not in this process, so that every replica counts in the
same one; a compare-and-set makes each count atomic.

Wrong: a window that starts at a client's own first search is still a fixed window. A client
that searched once, and spends the rest of that window's quota just before it ends, has a new
window and a whole new quota a moment later: nearly twice a burst at once.
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


class SharedClientWindow:
    """A window of one second per client, opened by the client's first search after the last
    one ended, with a count of the searches in it. Kept in the store so that every replica
    counts in the same window; once `limit` searches have counted in it, the rest are refused
    until it ends."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def take(self, client: str) -> float:
        """Count a search by `client`: 0.0 if it is allowed, else the seconds to wait."""
        key = f"/kv/window:{client}"
        while True:
            read = (await store.get(key)).raise_for_status().json()
            now = time.time()
            state = read["value"]
            if state is None or now - state["start"] >= 1.0:
                state = {"start": now, "count": 0}  # a new window, from this search
            if state["count"] >= self.limit:
                return state["start"] + 1.0 - now
            counted = {"start": state["start"], "count": state["count"] + 1}
            written = await store.put(key, json={"value": counted, "version": read["version"]})
            if written.status_code != 409:
                written.raise_for_status()
                return 0.0
            # Another replica counted a search since we read: read the window again.


limiter = SharedClientWindow(int(RATE))
workers = asyncio.Semaphore(WORKERS)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def search(request: Request) -> JSONResponse:
    client = request.headers.get("x-client", "anonymous")
    wait = await limiter.take(client)
    if wait > 0:
        # Whole seconds (RFC 9110), rounded up: by then its window has ended.
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
