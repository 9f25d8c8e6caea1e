"""payments: takes a charge from a client and records it in the ledger, once per idempotency key.

Each charge is a row in SQLite: the key, the order and amount it asked for, which run of
payments claimed it, and the ledger's entry id once there is one. Duplicates in this process
wait on an asyncio.Event of the request that holds the key; a claim left by an earlier run
(which crashed before the ledger answered) is refused at once.

Also correct: claims in an explicit BEGIN IMMEDIATE transaction, stores the order, the amount and
the ledger's id instead of a hash and an answer, wakes duplicates with an asyncio.Event per key,
and tells a claim orphaned by a crash by the run id stored with it.
"""

import asyncio
import contextlib
import os
import sqlite3
import uuid
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LEDGER_URL = os.environ["LEDGER_URL"]
DATABASE = Path(os.environ["STATE_DIR"]) / "payments.db"
WAIT_FOR_FIRST = 2.0  # seconds a duplicate waits for the request that holds its key
RUN = uuid.uuid4().hex  # this run of payments; a claim from another run will never finish

db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute(
    """CREATE TABLE IF NOT EXISTS charges (
        key       TEXT PRIMARY KEY,
        order_id  TEXT NOT NULL,
        amount    INTEGER NOT NULL,
        run       TEXT NOT NULL,
        charge_id INTEGER              -- the ledger's entry, NULL until it answered
    )"""
)
finished: dict[str, asyncio.Event] = {}  # keys this run is charging right now


def claim(key: str, order: str, amount: int) -> tuple[str, int, str, int | None] | None:
    """Claim `key`: None if we did, else the row of whoever claimed it first."""
    db.execute("BEGIN IMMEDIATE")  # no other writer between our read and our write
    try:
        row = db.execute(
            "SELECT order_id, amount, run, charge_id FROM charges WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO charges (key, order_id, amount, run) VALUES (?, ?, ?, ?)",
                (key, order, amount, RUN),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return row


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def create_charge(request: Request) -> JSONResponse:
    key = request.headers.get("Idempotency-Key")
    if not key:
        return JSONResponse({"error": "send an Idempotency-Key header"}, status_code=400)
    body = await request.json()
    order, amount = body.get("order"), body.get("amount")
    if not isinstance(order, str) or not isinstance(amount, int) or amount <= 0:
        return JSONResponse(
            {"error": 'expected {"order": "<id>", "amount": <cents, above 0>}'}, status_code=400
        )

    first = claim(key, order, amount)
    if first is None:
        return await charge(key, order, amount)
    first_order, first_amount, run, charge_id = first
    if (first_order, first_amount) != (order, amount):
        return JSONResponse(
            {"error": "this Idempotency-Key was used with a different request"}, status_code=422
        )
    if charge_id is None and run == RUN and key in finished:
        with contextlib.suppress(TimeoutError):  # still unanswered: 409 below
            await asyncio.wait_for(finished[key].wait(), WAIT_FOR_FIRST)
        row = db.execute("SELECT charge_id FROM charges WHERE key = ?", (key,)).fetchone()
        if row is None:  # the first request failed and released the key
            return JSONResponse({"error": "the first attempt failed; retry"}, status_code=503)
        charge_id = row[0]
    if charge_id is None:
        return JSONResponse(
            {"error": "a request with this Idempotency-Key is in progress or was interrupted"},
            status_code=409,
        )
    return JSONResponse(
        {"charge_id": charge_id, "order": order, "amount": amount},
        status_code=201,
        headers={"Idempotent-Replayed": "true"},
    )


async def charge(key: str, order: str, amount: int) -> JSONResponse:
    """Charge in the ledger for the request that holds `key`; wake its duplicates after."""
    finished[key] = asyncio.Event()
    try:
        async with httpx.AsyncClient(timeout=5.0) as ledger:
            answer = await ledger.post(
                f"{LEDGER_URL}/entries", json={"order": order, "amount": amount}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        db.execute("DELETE FROM charges WHERE key = ?", (key,))  # the retry may try again
        return JSONResponse({"error": f"ledger unavailable: {exc!r}"}, status_code=502)
    else:
        charge_id = answer.json()["id"]
        db.execute("UPDATE charges SET charge_id = ? WHERE key = ?", (charge_id, key))
        return JSONResponse(
            {"charge_id": charge_id, "order": order, "amount": amount}, status_code=201
        )
    finally:
        finished.pop(key).set()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/charges", create_charge, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
