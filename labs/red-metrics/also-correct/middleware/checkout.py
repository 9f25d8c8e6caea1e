"""checkout: the shop's front door. A checkout charges the card, then places the order.

    POST /checkout {"user", "amount", "items"} -> 200 {"status": "paid", "order_id"}
                                                  502 when the payment failed
    GET  /orders/{order_id}                     -> the order, from the orders service

It serves its metrics on GET /metrics, for Prometheus to scrape.

Also correct: an ASGI middleware measures every request in one place, taking the route's
template from the router (scope["route"]) and the status from the response it sends; other
buckets, also with one ending at 0.3 s.
"""

import logging
import os
import time

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAYMENTS_URL = os.environ["PAYMENTS_URL"]
ORDERS_URL = os.environ["ORDERS_URL"]
SLO_SECONDS = 0.3

log = logging.getLogger("checkout")
http = httpx.AsyncClient(timeout=2.0)

REQUESTS = Counter("http_requests", "Requests checkout answered", ["route", "code"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.01, 0.05, 0.15, SLO_SECONDS, 0.6, 1.2, 5.0),
)
ORDERS_PLACED = Counter("orders_placed", "Orders the orders service accepted")
ORDERS_VALUE = Counter("orders_value_euros", "Value of the orders placed, in euros")
UNMEASURED = {"/metrics", "/health"}


class Measured:
    """Counts and times every request the router matched, by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMEASURED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is not None:  # unmatched paths (404s) would be one series each
                REQUESTS.labels(route=route, code=f"{status // 100}xx").inc()
                LATENCY.labels(route=route).observe(time.perf_counter() - started)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def checkout(request: Request) -> Response:
    order = await request.json()
    try:
        charge = await http.post(
            f"{PAYMENTS_URL}/charge", json={"user": order["user"], "amount": order["amount"]}
        )
        charge.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("payment failed for %s: %r", order["user"], exc)
        return JSONResponse({"error": "payment failed"}, status_code=502)
    return JSONResponse({"status": "paid", "order_id": await place(order)})


async def place(order: dict) -> str | None:
    """The customer has paid: place the order. If orders is down, the payment log has it, and
    the nightly job places it from there (the customer must not see an error for it)."""
    try:
        placed = await http.post(f"{ORDERS_URL}/orders", json=order)
        placed.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("order for %s not placed, left to the nightly job: %r", order["user"], exc)
        return None
    ORDERS_PLACED.inc()
    ORDERS_VALUE.inc(order["amount"])
    order_id: str = placed.json()["order_id"]
    return order_id


async def show_order(request: Request) -> Response:
    found = await http.get(f"{ORDERS_URL}/orders/{request.path_params['order_id']}")
    return Response(found.content, found.status_code, media_type="application/json")


routes = [
    Route("/health", health),
    Route("/checkout", checkout, methods=["POST"]),
    Route("/orders/{order_id}", show_order),
    Route("/metrics", metrics),
]

# Every measured route's series exist from the start, at 0: rate() cannot tell a new series'
# first sample from an old one, and would miss the first errors.
for measured in (r.path for r in routes if r.path not in UNMEASURED):
    for code in ("2xx", "4xx", "5xx"):
        REQUESTS.labels(route=measured, code=code)
    LATENCY.labels(route=measured)

app = Measured(Starlette(routes=routes))

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
