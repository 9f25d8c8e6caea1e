"""orders: keeps the orders the shop has placed. Owned by another team (and by the harness).

    POST /orders {"user", "amount", "items"} -> 201 {"order_id"}
    GET  /orders/{order_id}                 -> 200 {"order_id", "user", "amount", "items"}
                                               404 for an order it does not have

Orders live in SQLite. GET /placed lists every order stored, with its amount: the checks
count there what was really placed. (An order the checks make it fail, HTTP 500 from
harness.service_kit.with_chaos, never reaches it: it is not stored.)
"""

import json
import os
import sqlite3
import uuid
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

db = sqlite3.connect(
    Path(os.environ["STATE_DIR"]) / "orders.db", isolation_level=None, check_same_thread=False
)
db.execute(
    """CREATE TABLE IF NOT EXISTS orders (
        id     TEXT PRIMARY KEY,
        user   TEXT NOT NULL,
        amount REAL NOT NULL,
        items  TEXT NOT NULL
    )"""
)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place(request: Request) -> JSONResponse:
    body = await request.json()
    order_id = uuid.uuid4().hex[:12]
    db.execute(
        "INSERT INTO orders (id, user, amount, items) VALUES (?, ?, ?, ?)",
        (order_id, str(body["user"]), float(body["amount"]), json.dumps(body.get("items", []))),
    )
    return JSONResponse({"order_id": order_id}, status_code=201)


async def show(request: Request) -> JSONResponse:
    order_id = request.path_params["order_id"]
    row = db.execute("SELECT user, amount, items FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        return JSONResponse({"error": f"no order {order_id}"}, status_code=404)
    user, amount, items = row
    return JSONResponse(
        {"order_id": order_id, "user": user, "amount": amount, "items": json.loads(items)}
    )


async def placed(request: Request) -> JSONResponse:
    rows = db.execute("SELECT id, amount FROM orders").fetchall()
    return JSONResponse({"orders": [{"order_id": i, "amount": a} for i, a in rows]})


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/orders", place, methods=["POST"]),
            Route("/orders/{order_id}", show),
            Route("/placed", placed),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
