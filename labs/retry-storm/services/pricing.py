"""pricing: quotes the price of an item. Owned by another team (and by the lab), not by you.

    POST /price  {"call_id", "item"}  ->  200 {"call_id", "item", "price"}
                                      or 404 {"error"} for an item it does not sell (final)
                                      or 503 {"error"} while it is overloaded

It can take about CAPACITY requests a second. Past that it does not slow down gracefully: a
request it cannot serve still costs it work (accept the connection, read the request, queue it,
give up on it), so once more than CAPACITY requests arrived within a second it prices nothing at
all: every request waits REFUSE_AFTER seconds in its queue, then gets 503. It works again only
when the flood has ebbed to under RECOVER_BELOW requests a second: its queues must drain first.
This is congestion collapse, in its simplest form.

Every request counts towards that load, including those the lab's fault injection answers
(harness.service_kit.with_chaos), which also keeps a record of each request received: the
checks read it to count the gateway's attempts per call.
"""

import asyncio
import hashlib
import os
import time
from collections import deque

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.service_kit import with_chaos

CAPACITY = 100  # requests a second
WORK = 0.02  # seconds to price one item
RECOVER_BELOW = 50  # requests a second: a collapsed pricing works again under this load
REFUSE_AFTER = 0.1  # seconds an overloaded request waits before it is turned away
ITEMS = {"kettle", "grinder", "scale", "moka-pot", "tamper", "filter-papers"}  # what it sells

arrivals: deque[float] = deque()  # when each recent POST /price arrived (monotonic seconds)
collapsed = False


def overloaded() -> bool:
    """Collapsed: past CAPACITY requests within a second, and not yet back under RECOVER_BELOW."""
    global collapsed
    horizon = time.monotonic() - 1.0
    while arrivals and arrivals[0] < horizon:
        arrivals.popleft()
    if len(arrivals) > CAPACITY:
        collapsed = True
    elif len(arrivals) < RECOVER_BELOW:
        collapsed = False
    return collapsed


class CountArrivals:
    """ASGI middleware: notes when each POST /price arrives, before anything answers it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/price":
            arrivals.append(time.monotonic())
        await self.app(scope, receive, send)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def price(request: Request) -> JSONResponse:
    body = await request.json()
    item = str(body.get("item", ""))
    if item not in ITEMS:  # checked on arrival, before the request is queued
        return JSONResponse({"error": f"no such item: {item!r}"}, status_code=404)
    if overloaded():
        await asyncio.sleep(REFUSE_AFTER)
        return JSONResponse({"error": "overloaded"}, status_code=503)
    await asyncio.sleep(WORK)
    cents = 500 + int(hashlib.sha256(item.encode()).hexdigest(), 16) % 4500
    return JSONResponse({"call_id": body.get("call_id"), "item": item, "price": cents / 100})


app = CountArrivals(
    with_chaos(
        Starlette(
            routes=[Route("/health", health), Route("/price", price, methods=["POST"])],
        )
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
