"""orders: places an order. It looks the price up in the cache, then reserves the items at
inventory.

POST /orders {"order": "o-17", "sku": "sku-2", "qty": 1} answers 201 {"order", "reservation",
"amount"}, or 502 when the cache or inventory fails. See the lab's README.
"""

import os

import httpx
import uvicorn
from services.tracing import TracedApp, setup, traced_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

tracer = setup("orders")
cache = traced_client(tracer, os.environ["CACHE_URL"], timeout=2.0)
inventory = traced_client(tracer, os.environ["INVENTORY_URL"], timeout=2.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> JSONResponse:
    order = await request.json()
    try:
        price = await cache.get(f"/prices/{order['sku']}")
        reserved = await inventory.post(
            "/reservations",
            json={"order": order["order"], "sku": order["sku"], "qty": order["qty"]},
        )
    except httpx.HTTPError:
        return JSONResponse({"error": "a dependency is unavailable"}, status_code=502)
    if price.status_code != 200 or reserved.status_code != 201:
        return JSONResponse({"error": "the order could not be placed"}, status_code=502)
    answer = {
        "order": order["order"],
        "reservation": reserved.json()["reservation"],
        "amount": price.json()["cents"] * order["qty"],
    }
    return JSONResponse(answer, status_code=201)


app = TracedApp(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/orders", place_order, methods=["POST"]),
        ]
    ),
    tracer,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
