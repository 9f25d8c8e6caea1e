"""projection: the read model of revenue per customer, built from the orders service's events.

The relay delivers every event to POST /events, one at a time: {"id", "order", "version",
"type": "placed" | "amended", "customer" (placed only), "amount", "position"}. Answer 2xx when
you have taken it; any other answer (or none) and the relay delivers it again later.

GET /revenue answers {"c-3": 1200, ...}: what each customer's orders add up to, in cents. The
checks read it: keep its shape.

Each order is a stream whose versions must be applied 1, 2, 3...: the projection keeps, per
order, the last version it applied, in SQLite. An event at or below it is a redelivery: taken,
and nothing changes. An event beyond the next one came early: refused (409).

Wrong: the version is written in its own transaction after the revenue's, so a crash between the
two commits leaves the event applied but not marked, and its redelivery counts it again.
Rejected by: test_3_a_redelivered_event_counts_once
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
db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT, amount INTEGER)")
db.execute("CREATE TABLE IF NOT EXISTS applied (id TEXT PRIMARY KEY, version INTEGER NOT NULL)")
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
    row = db.execute("SELECT version FROM applied WHERE id = ?", (event["order"],)).fetchone()
    last = row[0] if row else 0
    if event["version"] <= last:
        return JSONResponse({"taken": event["id"], "applied before": True})
    if event["version"] > last + 1:
        return JSONResponse(
            {"error": f"version {last + 1} of {event['order']} comes first"}, status_code=409
        )
    with db:
        if event["type"] == "placed":
            db.execute(
                "INSERT OR REPLACE INTO orders (id, customer, amount) VALUES (?, ?, ?)",
                (event["order"], event["customer"], event["amount"]),
            )
            add(event["customer"], event["amount"])
        else:
            customer, old = db.execute(
                "SELECT customer, amount FROM orders WHERE id = ?", (event["order"],)
            ).fetchone()
            db.execute(
                "UPDATE orders SET amount = ? WHERE id = ?", (event["amount"], event["order"])
            )
            add(customer, event["amount"] - old)
    with db:
        db.execute(
            "INSERT OR REPLACE INTO applied (id, version) VALUES (?, ?)",
            (event["order"], event["version"]),
        )
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
