"""checkout: the shop's front door. A checkout charges the card, then places the order.

    POST /checkout {"user", "amount", "items"} -> 200 {"status": "paid", "order_id"}
                                                  502 when the payment failed
    GET  /orders/{order_id}                     -> the order, from the orders service

It serves its metrics on GET /metrics, for Prometheus to scrape: requests by route and status
class, their durations in a histogram, and the orders placed and their value.

Wrong: a request is counted and timed after its handler returns, with no try/finally. When the
handler raises (orders unreachable on a lookup), Starlette answers 500 and nothing counts it:
the errors of an outage are the ones missing from the error ratio.
Rejected by: test_1_errors_are_counted_as_the_shoppers_saw_them
"""

import logging
import os
import time
from collections.abc import Awaitable, Callable

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAYMENTS_URL = os.environ["PAYMENTS_URL"]
ORDERS_URL = os.environ["ORDERS_URL"]

log = logging.getLogger("checkout")
http = httpx.AsyncClient(timeout=2.0)

# Labels with a handful of values each: the route's template, never the URL (one series per
# order id would grow without bound), and the status class.
REQUESTS = Counter("http_requests", "Requests checkout answered", ["route", "code"])
# A histogram, not a summary: buckets add up across instances and over time, and one bucket
# ends at the SLO's 300 ms, so "how many were fast enough" is counted, not guessed.
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),
)
ORDERS_PLACED = Counter("orders_placed", "Orders the orders service accepted")
ORDERS_VALUE = Counter("orders_value_euros", "Value of the orders placed, in euros")

Handler = Callable[[Request], Awaitable[Response]]


def measured(route: str, handler: Handler) -> Handler:
    """Count and time every answer of `handler` under its route template."""

    async def measure(request: Request) -> Response:
        started = time.perf_counter()
        response = await handler(request)
        REQUESTS.labels(route=route, code=f"{response.status_code // 100}xx").inc()
        LATENCY.labels(route=route).observe(time.perf_counter() - started)
        return response

    return measure


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


# Every series exists from the start, at 0: rate() sees the first errors as an increase
# rather than as a new series' first sample (which it cannot tell from an old one).
for route in ("/checkout", "/orders/{order_id}"):
    for code in ("2xx", "4xx", "5xx"):
        REQUESTS.labels(route=route, code=code)
    LATENCY.labels(route=route)

app = Starlette(
    routes=[
        Route("/health", health),
        Route("/checkout", measured("/checkout", checkout), methods=["POST"]),
        Route("/orders/{order_id}", measured("/orders/{order_id}", show_order)),
        Route("/metrics", metrics),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
