"""orders: takes customers' orders, and tells the rest of the company about each change.

POST /orders {"order": "o-17", "customer": "c-3", "amount": 500}   place an order (201)
PATCH /orders/{order} {"amount": 700}                             change its amount (200)

Every change is an event, published to the relay (RELAY_URL), which carries it to the
projection: {"id", "order", "version", "type": "placed" | "amended", "customer" (placed only),
"amount"}. An order's versions count 1, 2, 3... in the order its changes were made.

The orders table is the company's record (the checks read it): keep its shape.

No change without its event: each event is published first, and the change is written only once
the relay has it; if the relay cannot be reached, the change is refused (503) and nothing is
written.

Wrong: the event leaves before the change is committed, so a crash in between leaves an event,
and revenue in the read model, for an order the table does not have.
Rejected by: test_2_no_event_lost_when_orders_crashes_before_publishing
"""

import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RELAY_URL = os.environ["RELAY_URL"]
DATABASE = Path(os.environ["STATE_DIR"]) / "orders.db"

db = sqlite3.connect(DATABASE)
db.execute(
    """CREATE TABLE IF NOT EXISTS orders (
        id       TEXT PRIMARY KEY,
        customer TEXT NOT NULL,
        amount   INTEGER NOT NULL,   -- cents
        version  INTEGER NOT NULL    -- 1 when placed, one more for every change
    )"""
)
db.commit()


async def publish(event: dict[str, Any]) -> bool:
    """Hand the event to the relay; True once the relay has it."""
    try:
        async with httpx.AsyncClient(timeout=2.0) as relay:
            answer = await relay.post(f"{RELAY_URL}/events", json=event)
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        print(f"could not publish {event['id']}: {exc!r}")
        return False
    return True


def unavailable() -> JSONResponse:
    return JSONResponse({"error": "the relay is unavailable; try again"}, status_code=503)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place(request: Request) -> JSONResponse:
    body = await request.json()
    order, customer, amount = body.get("order"), body.get("customer"), body.get("amount")
    if not isinstance(order, str) or not isinstance(customer, str) or not isinstance(amount, int):
        return JSONResponse({"error": 'expected {"order", "customer", "amount"}'}, status_code=400)
    if db.execute("SELECT 1 FROM orders WHERE id = ?", (order,)).fetchone():
        return JSONResponse({"error": f"order {order} exists"}, status_code=409)
    event = {"type": "placed", "customer": customer, "amount": amount}
    if not await publish({"id": f"{order}/1", "order": order, "version": 1, **event}):
        return unavailable()
    with db:
        db.execute(
            "INSERT INTO orders (id, customer, amount, version) VALUES (?, ?, ?, 1)",
            (order, customer, amount),
        )
    return JSONResponse({"order": order, "customer": customer, "amount": amount}, status_code=201)


async def amend(request: Request) -> JSONResponse:
    order, amount = request.path_params["order"], (await request.json()).get("amount")
    if not isinstance(amount, int):
        return JSONResponse({"error": 'expected {"amount": <cents>}'}, status_code=400)
    row = db.execute("SELECT version FROM orders WHERE id = ?", (order,)).fetchone()
    if row is None:
        return JSONResponse({"error": f"no order {order}"}, status_code=404)
    version = row[0] + 1
    event = {"type": "amended", "amount": amount}
    if not await publish({"id": f"{order}/{version}", "order": order, "version": version, **event}):
        return unavailable()
    with db:
        db.execute(
            "UPDATE orders SET amount = ?, version = ? WHERE id = ?", (amount, version, order)
        )
    return JSONResponse({"order": order, "amount": amount, "version": version})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place, methods=["POST"]),
        Route("/orders/{order}", amend, methods=["PATCH"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
