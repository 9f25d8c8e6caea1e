"""projection: the read model of revenue per customer, built from the orders service's events.

The relay delivers every event to POST /events, one at a time: {"id", "order", "version",
"type": "placed" | "amended", "customer" (placed only), "amount", "position"}. Answer 2xx when
you have taken it; any other answer (or none) and the relay delivers it again later.

GET /revenue answers {"c-3": 1200, ...}: what each customer's orders add up to, in cents. The
checks read it: keep its shape.

Each order is a stream whose versions must be applied 1, 2, 3...: the projection keeps, per
order, the last version it applied, in the same transaction as the revenue it changed. An event
at or below it was applied already: taken, and nothing changes. An event beyond the next one
came early: refused (409). A change to an order it has never heard of has nothing to change.

Wrong: a change that arrives before its order was placed is taken (200) and dropped, so the
relay never brings it again and the order keeps its first amount.
Rejected by: test_4_events_out_of_order_are_applied_in_order
"""

import os
import sqlite3
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DATABASE = Path(os.environ["STATE_DIR"]) / "projection.db"

db = sqlite3.connect(DATABASE)
db.execute("CREATE TABLE IF NOT EXISTS revenue (customer TEXT PRIMARY KEY, total INTEGER)")
db.execute(
    "CREATE TABLE IF NOT EXISTS orders ("
    " id TEXT PRIMARY KEY, customer TEXT, amount INTEGER, version INTEGER NOT NULL)"
)
db.commit()


def add(customer: str, cents: int) -> None:
    db.execute(
        "INSERT INTO revenue (customer, total) VALUES (?, ?)"
        " ON CONFLICT (customer) DO UPDATE SET total = total + excluded.total",
        (customer, cents),
    )


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def take(request: Request) -> JSONResponse:
    event = await request.json()
    with db:
        row = db.execute(
            "SELECT customer, amount, version FROM orders WHERE id = ?", (event["order"],)
        ).fetchone()
        if row is None and event["type"] == "amended":
            return JSONResponse({"ignored": f"no order {event['order']} to amend"})
        applied = row[2] if row else 0
        if event["version"] <= applied:
            return JSONResponse({"taken": event["id"], "applied before": True})
        if event["version"] > applied + 1:
            return JSONResponse(
                {"error": f"version {applied + 1} of {event['order']} comes first"},
                status_code=409,
            )
        if event["type"] == "placed":
            db.execute(
                "INSERT INTO orders (id, customer, amount, version) VALUES (?, ?, ?, 1)",
                (event["order"], event["customer"], event["amount"]),
            )
            add(event["customer"], event["amount"])
        else:
            customer, old, _ = row
            db.execute(
                "UPDATE orders SET amount = ?, version = ? WHERE id = ?",
                (event["amount"], event["version"], event["order"]),
            )
            add(customer, event["amount"] - old)
    return JSONResponse({"taken": event["id"]})


async def revenue(request: Request) -> JSONResponse:
    return JSONResponse(dict(db.execute("SELECT customer, total FROM revenue ORDER BY customer")))


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/events", take, methods=["POST"]),
        Route("/revenue", revenue),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
