"""orders: takes customers' orders, and tells the rest of the company about each change.

POST /orders {"order": "o-17", "customer": "c-3", "amount": 500}   place an order (201)
PATCH /orders/{order} {"amount": 700}                             change its amount (200)

Every change is an event, published to the relay (RELAY_URL), which carries it to the
projection: {"id", "order", "version", "type": "placed" | "amended", "customer" (placed only),
"amount"}. An order's versions count 1, 2, 3... in the order its changes were made.

The orders table is the company's record (the checks read it): keep its shape.

Each change and its event are committed together (the event in an outbox table). The request
then tries to publish its own event at once; a sweeper publishes whatever is still in the
outbox (a failed publish, a crash) every SWEEP_EVERY seconds, starting at startup.
"""

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
SWEEP_EVERY = 0.1  # seconds

db = sqlite3.connect(DATABASE)
db.execute(
    """CREATE TABLE IF NOT EXISTS orders (
        id       TEXT PRIMARY KEY,
        customer TEXT NOT NULL,
        amount   INTEGER NOT NULL,   -- cents
        version  INTEGER NOT NULL    -- 1 when placed, one more for every change
    )"""
)
db.execute("CREATE TABLE IF NOT EXISTS outbox (event_id TEXT PRIMARY KEY, event TEXT NOT NULL)")
db.commit()
relay = httpx.AsyncClient(base_url=RELAY_URL, timeout=2.0)


async def send(event_id: str, event: str) -> None:
    """Publish one outbox event; it leaves the outbox only once the relay has it."""
    try:
        answer = await relay.post("/events", content=event)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        print(f"{event_id} stays in the outbox: {exc!r}")
        return
    with db:
        db.execute("DELETE FROM outbox WHERE event_id = ?", (event_id,))


async def sweeper() -> None:
    while True:
        for event_id, event in db.execute("SELECT event_id, event FROM outbox").fetchall():
            await send(event_id, event)
        await asyncio.sleep(SWEEP_EVERY)


def commit_with_event(statement: str, args: tuple[Any, ...], event: dict[str, Any]) -> str:
    """Run the change and store its event in one transaction; the event, as sent."""
    text = json.dumps(event)
    with db:
        db.execute(statement, args)
        db.execute("INSERT INTO outbox (event_id, event) VALUES (?, ?)", (event["id"], text))
    return text


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place(request: Request) -> JSONResponse:
    body = await request.json()
    order, customer, amount = body.get("order"), body.get("customer"), body.get("amount")
    if not isinstance(order, str) or not isinstance(customer, str) or not isinstance(amount, int):
        return JSONResponse({"error": 'expected {"order", "customer", "amount"}'}, status_code=400)
    event = {"id": f"{order}/1", "order": order, "version": 1, "type": "placed"}
    event |= {"customer": customer, "amount": amount}
    try:
        text = commit_with_event(
            "INSERT INTO orders (id, customer, amount, version) VALUES (?, ?, ?, 1)",
            (order, customer, amount),
            event,
        )
    except sqlite3.IntegrityError:
        return JSONResponse({"error": f"order {order} exists"}, status_code=409)
    await send(event["id"], text)
    return JSONResponse({"order": order, "customer": customer, "amount": amount}, status_code=201)


async def amend(request: Request) -> JSONResponse:
    order, amount = request.path_params["order"], (await request.json()).get("amount")
    if not isinstance(amount, int):
        return JSONResponse({"error": 'expected {"amount": <cents>}'}, status_code=400)
    row = db.execute("SELECT version FROM orders WHERE id = ?", (order,)).fetchone()
    if row is None:
        return JSONResponse({"error": f"no order {order}"}, status_code=404)
    version = row[0] + 1
    event = {"id": f"{order}/{version}", "order": order, "version": version}
    event |= {"type": "amended", "amount": amount}
    text = commit_with_event(
        "UPDATE orders SET amount = ?, version = ? WHERE id = ?", (amount, version, order), event
    )
    await send(event["id"], text)
    return JSONResponse({"order": order, "amount": amount, "version": version})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(sweeper())
    yield
    task.cancel()
    await relay.aclose()


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
