"""orders: places an order. It looks the price up in the cache, then reserves the items at
inventory.

POST /orders {"order": "o-17", "sku": "sku-2", "qty": 1} answers 201 {"order", "reservation",
"amount"}, or 502 when the cache or inventory fails. See the lab's README.

Wrong: one CLIENT span covers both calls, to the cache and to inventory: the trace cannot say
which of the two took the time.
Rejected by: test_1_every_request_is_one_trace
"""

import os

import httpx
import uvicorn
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from services.tracing import answered, server_span, setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

tracer = setup("orders")
cache = httpx.AsyncClient(base_url=os.environ["CACHE_URL"], timeout=2.0)
inventory = httpx.AsyncClient(base_url=os.environ["INVENTORY_URL"], timeout=2.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> JSONResponse:
    with server_span(tracer, request, "/orders") as span:
        order = await request.json()
        span.set_attribute("order.id", order["order"])
        try:
            # One span for the work downstream: the price, then the reservation.
            with tracer.start_as_current_span("reserve", kind=SpanKind.CLIENT) as downstream:
                headers: dict[str, str] = {}
                propagate.inject(headers)
                price = await cache.get(f"/prices/{order['sku']}", headers=headers)
                reserved = await inventory.post(
                    "/reservations",
                    json={"order": order["order"], "sku": order["sku"], "qty": order["qty"]},
                    headers=headers,
                )
                status = max(price.status_code, reserved.status_code)
                downstream.set_attribute("http.response.status_code", status)
                if status >= 500:
                    downstream.set_status(Status(StatusCode.ERROR))
        except httpx.HTTPError:
            error = {"error": "a dependency is unavailable"}
            return JSONResponse(error, status_code=answered(span, 502))
        if price.status_code != 200 or reserved.status_code != 201:
            error = {"error": "the order could not be placed"}
            return JSONResponse(error, status_code=answered(span, 502))
        answer = {
            "order": order["order"],
            "reservation": reserved.json()["reservation"],
            "amount": price.json()["cents"] * order["qty"],
        }
        return JSONResponse(answer, status_code=answered(span, 201))


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place_order, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
