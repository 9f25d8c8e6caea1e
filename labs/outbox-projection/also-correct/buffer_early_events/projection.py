"""projection: the read model of revenue per customer, built from the orders service's events.

The relay delivers every event to POST /events, one at a time: {"id", "order", "version",
"type": "placed" | "amended", "customer" (placed only), "amount", "position"}. Answer 2xx when
you have taken it; any other answer (or none) and the relay delivers it again later.

GET /revenue answers {"c-3": 1200, ...}: what each customer's orders add up to, in cents. The
checks read it: keep its shape.

Every event is taken (200). One that came before its predecessor waits in a table of early
events; once the predecessor is applied, the early events that follow it are applied too, in
the same transaction. Applied versions are kept per order, beside the revenue.

Also correct: buffers early events in SQLite instead of refusing them, and drains the buffer
when the gap fills; explicit BEGIN IMMEDIATE transactions in autocommit mode.
"""

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DATABASE = Path(os.environ["STATE_DIR"]) / "projection.db"

db = sqlite3.connect(DATABASE, isolation_level=None)
db.executescript(
    """
    CREATE TABLE IF NOT EXISTS revenue (customer TEXT PRIMARY KEY, total INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS streams (
        order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL,
        version INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS early (
        order_id TEXT NOT NULL, version INTEGER NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (order_id, version)
    );
    """
)


def applied_version(order: str) -> int:
    row = db.execute("SELECT version FROM streams WHERE order_id = ?", (order,)).fetchone()
    return row[0] if row else 0


def apply(event: dict[str, Any]) -> None:
    """Apply the next version of an order: move its amount, and its customer's revenue."""
    if event["type"] == "placed":
        customer, old = event["customer"], 0
        db.execute(
            "INSERT INTO streams (order_id, customer, amount, version) VALUES (?, ?, ?, ?)",
            (event["order"], customer, event["amount"], event["version"]),
        )
    else:
        customer, old = db.execute(
            "SELECT customer, amount FROM streams WHERE order_id = ?", (event["order"],)
        ).fetchone()
        db.execute(
            "UPDATE streams SET amount = ?, version = ? WHERE order_id = ?",
            (event["amount"], event["version"], event["order"]),
        )
    db.execute(
        "INSERT INTO revenue (customer, total) VALUES (?, ?)"
        " ON CONFLICT (customer) DO UPDATE SET total = total + excluded.total",
        (customer, event["amount"] - old),
    )


def offer(event: dict[str, Any]) -> str:
    """Apply, buffer or skip one event; inside the caller's transaction."""
    order, version = event["order"], event["version"]
    current = applied_version(order)
    if version <= current:
        return "applied before"
    if version > current + 1:
        db.execute(
            "INSERT OR IGNORE INTO early (order_id, version, event) VALUES (?, ?, ?)",
            (order, version, json.dumps(event)),
        )
        return "kept until its predecessor comes"
    apply(event)
    while True:  # the early events this one was waiting for
        row = db.execute(
            "SELECT event FROM early WHERE order_id = ? AND version = ?", (order, version + 1)
        ).fetchone()
        if row is None:
            break
        apply(json.loads(row[0]))
        version += 1
    db.execute("DELETE FROM early WHERE order_id = ? AND version <= ?", (order, version))
    return "applied"


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def take(request: Request) -> JSONResponse:
    event = await request.json()
    db.execute("BEGIN IMMEDIATE")
    try:
        outcome = offer(event)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return JSONResponse({"id": event["id"], "outcome": outcome})


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
