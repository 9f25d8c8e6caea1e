"""orders: places an order. It reserves the items at inventory, then charges the card at
payments.

POST /orders {"order": "o-17", "sku": "sku-2", "qty": 1, "card": "4929..."} with the customer's
`Authorization: Bearer ...` header; answers 201 {"order", "reservation", "charge"}, or 502 when
inventory or payments fails. See the lab's README for the whole protocol.

One line per order, when it is done, with the request's id passed explicitly.

Wrong: only the line of a placed order carries the request's id; the line of an order that
failed (inventory or payments down) has none, so the orders nobody can follow are exactly the
ones someone will ask about.
Rejected by: test_1_every_request_can_be_followed_by_its_id
"""

import os
import time
import uuid

import httpx
import uvicorn
from services.logs import HEADER, setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = setup("orders")
inventory = httpx.AsyncClient(base_url=os.environ["INVENTORY_URL"], timeout=2.0)
payments = httpx.AsyncClient(base_url=os.environ["PAYMENTS_URL"], timeout=2.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> JSONResponse:
    started = time.perf_counter()
    rid = request.headers.get(HEADER) or uuid.uuid4().hex
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return JSONResponse({"error": "a bearer token is required"}, status_code=401)
    order = await request.json()
    try:
        reserved = await inventory.post(
            "/reservations",
            json={"order": order["order"], "sku": order["sku"], "qty": order["qty"]},
            headers={HEADER: rid},
        )
        reserved.raise_for_status()
        charged = await payments.post(
            "/charges",
            json={
                "order": order["order"],
                "amount": reserved.json()["amount"],
                "card": order["card"],
            },
            headers={HEADER: rid},
        )
        charged.raise_for_status()
    except httpx.HTTPError as exc:
        log.error(
            "order failed",
            extra={
                "order": order["order"],
                "error": type(exc).__name__,
                "route": "/orders",
                "status": 502,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return JSONResponse({"error": f"order failed: {type(exc).__name__}"}, status_code=502)
    log.info(
        "order placed",
        extra={
            "request_id": rid,
            "order": order["order"],
            "route": "/orders",
            "status": 201,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return JSONResponse(
        {
            "order": order["order"],
            "reservation": reserved.json()["reservation"],
            "charge": charged.json()["charge"],
        },
        status_code=201,
    )


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place_order, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
