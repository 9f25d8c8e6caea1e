"""orders: the orders API. Users call it with a bearer token; it charges each order at payments
with a token of its own.

POST /orders {"order": "o-17", "amount": 12} needs scope orders:write: it charges the order at
payments and answers 201 {"order", "amount", "charge"}, or 502 if payments refused.
GET /orders/{order} needs scope orders:read and answers 200 with the order, or 404.
A request without a valid token is answered 401; a valid token without the route's scope, 403.
See the lab's README.
"""

import os

import httpx
import uvicorn
from services.security import Refused, authenticate, service_token
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

payments = httpx.AsyncClient(base_url=os.environ["PAYMENTS_URL"], timeout=2.0)
orders: dict[str, dict[str, object]] = {}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> JSONResponse:
    try:
        await authenticate(request, "orders:write")
    except Refused as refused:
        return JSONResponse({"error": refused.reason}, status_code=refused.status)
    order = await request.json()
    token = await service_token()
    charged = await payments.post(
        "/charges",
        json={"order": order["order"], "amount": order["amount"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    if charged.status_code != 201:
        return JSONResponse({"error": f"payments answered {charged.status_code}"}, 502)
    placed = {**order, "charge": charged.json()["charge"]}
    orders[order["order"]] = placed
    return JSONResponse(placed, status_code=201)


async def get_order(request: Request) -> JSONResponse:
    try:
        await authenticate(request, "orders:read")
    except Refused as refused:
        return JSONResponse({"error": refused.reason}, status_code=refused.status)
    found = orders.get(request.path_params["order"])
    if found is None:
        return JSONResponse({"error": "no such order"}, status_code=404)
    return JSONResponse(found)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place_order, methods=["POST"]),
        Route("/orders/{order}", get_order),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
