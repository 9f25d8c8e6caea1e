"""checkout: the shop's front door. A checkout charges the card, then places the order.

    POST /checkout {"user", "amount", "items"} -> 200 {"status": "paid", "order_id"}
                                                  502 when the payment failed
    GET  /orders/{order_id}                     -> the order, from the orders service

It serves its metrics on GET /metrics, for Prometheus to scrape.
"""

import logging
import os
import time

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Summary, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAYMENTS_URL = os.environ["PAYMENTS_URL"]
ORDERS_URL = os.environ["ORDERS_URL"]

log = logging.getLogger("checkout")
http = httpx.AsyncClient(timeout=2.0)

REQUESTS = Counter("http_requests", "Requests checkout answered", ["route"])
LATENCY = Summary("http_request_duration_seconds", "Time to answer a request", ["route"])


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def checkout(request: Request) -> Response:
    started = time.perf_counter()
    order = await request.json()
    try:
        charge = await http.post(
            f"{PAYMENTS_URL}/charge", json={"user": order["user"], "amount": order["amount"]}
        )
        charge.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("payment failed for %s: %r", order["user"], exc)
        response = JSONResponse({"error": "payment failed"}, status_code=502)
    else:
        response = JSONResponse({"status": "paid", "order_id": await place(order)})
    REQUESTS.labels(route=request.url.path).inc()
    LATENCY.labels(route=request.url.path).observe(time.perf_counter() - started)
    return response


async def place(order: dict) -> str | None:
    """The customer has paid: place the order. If orders is down, the payment log has it, and
    the nightly job places it from there (the customer must not see an error for it)."""
    try:
        placed = await http.post(f"{ORDERS_URL}/orders", json=order)
        placed.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("order for %s not placed, left to the nightly job: %r", order["user"], exc)
        return None
    order_id: str = placed.json()["order_id"]
    return order_id


async def show_order(request: Request) -> Response:
    started = time.perf_counter()
    found = await http.get(f"{ORDERS_URL}/orders/{request.path_params['order_id']}")
    response = Response(found.content, found.status_code, media_type="application/json")
    REQUESTS.labels(route=request.url.path).inc()
    LATENCY.labels(route=request.url.path).observe(time.perf_counter() - started)
    return response


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/checkout", checkout, methods=["POST"]),
        Route("/orders/{order_id}", show_order),
        Route("/metrics", metrics),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
