"""orders: takes customers' orders, and tells the rest of the company about each change.

POST /orders {"order": "o-17", "customer": "c-3", "amount": 500}   place an order (201)
PATCH /orders/{order} {"amount": 700}                             change its amount (200)

Every change is an event, published to the relay (RELAY_URL), which carries it to the
projection: {"id", "order", "version", "type": "placed" | "amended", "customer" (placed only),
"amount"}. An order's versions count 1, 2, 3... in the order its changes were made.

The orders table is the company's record (the checks read it): keep its shape.

A transactional outbox: each change and its event are written in one transaction, and a
publisher takes events out of the outbox and sends them to the relay.

Wrong: the publisher deletes an event from the outbox before the relay has it, so an event whose
send fails (the relay is down, or orders crashes right then) is gone.
Rejected by: test_1_read_model_matches_the_orders,
    test_7_an_event_waits_out_a_relay_out_of_reach
"""

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
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
db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, event TEXT NOT NULL)")
db.commit()
wake = asyncio.Event()  # set after a commit that added to the outbox


def record(event: dict[str, Any]) -> None:
    """Put the event in the outbox, inside the caller's transaction."""
    db.execute("INSERT INTO outbox (event) VALUES (?)", (json.dumps(event),))


async def publisher() -> None:
    """Send the outbox to the relay, oldest first, for ever."""
    async with httpx.AsyncClient(timeout=2.0) as relay:
        while True:
            wake.clear()
            rows = db.execute("SELECT seq, event FROM outbox ORDER BY seq").fetchall()
            for seq, event in rows:
                with db:
                    db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                try:
                    answer = await relay.post(f"{RELAY_URL}/events", content=event)
                    answer.raise_for_status()
                except httpx.HTTPError as exc:
                    print(f"could not publish {event}: {exc!r}")
            if not rows:
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=1.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place(request: Request) -> JSONResponse:
    body = await request.json()
    order, customer, amount = body.get("order"), body.get("customer"), body.get("amount")
    if not isinstance(order, str) or not isinstance(customer, str) or not isinstance(amount, int):
        return JSONResponse({"error": 'expected {"order", "customer", "amount"}'}, status_code=400)
    try:
        with db:
            db.execute(
                "INSERT INTO orders (id, customer, amount, version) VALUES (?, ?, ?, 1)",
                (order, customer, amount),
            )
            event = {"type": "placed", "customer": customer, "amount": amount}
            record({"id": f"{order}/1", "order": order, "version": 1, **event})
    except sqlite3.IntegrityError:
        return JSONResponse({"error": f"order {order} exists"}, status_code=409)
    wake.set()
    return JSONResponse({"order": order, "customer": customer, "amount": amount}, status_code=201)


async def amend(request: Request) -> JSONResponse:
    order, amount = request.path_params["order"], (await request.json()).get("amount")
    if not isinstance(amount, int):
        return JSONResponse({"error": 'expected {"amount": <cents>}'}, status_code=400)
    with db:
        row = db.execute("SELECT version FROM orders WHERE id = ?", (order,)).fetchone()
        if row is None:
            return JSONResponse({"error": f"no order {order}"}, status_code=404)
        version = row[0] + 1
        db.execute(
            "UPDATE orders SET amount = ?, version = ? WHERE id = ?", (amount, version, order)
        )
        event = {"type": "amended", "amount": amount}
        record({"id": f"{order}/{version}", "order": order, "version": version, **event})
    wake.set()
    return JSONResponse({"order": order, "amount": amount, "version": version})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(publisher())
    yield
    task.cancel()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place, methods=["POST"]),
        Route("/orders/{order}", amend, methods=["PATCH"]),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
