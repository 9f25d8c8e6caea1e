"""payments: takes a charge from a client and records it in the ledger, once per idempotency key.

Every key is claimed in SQLite before the ledger is called, and the answer is stored under it
after. Claims left without an answer by a crash are freed at startup, so retries can go on.

Wrong: it frees at startup the claims a crash left behind, though the ledger may already have
charged them, so the retry charges a second time.
Rejected by: test_6_a_crash_in_the_middle_of_a_charge_charges_at_most_once
"""

import asyncio
import hashlib
import json
import os
import sqlite3
import time
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

# Autocommit: each statement is its own transaction, on disk before the next line runs.
db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute(
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,     -- what the first request asked for
        status      INTEGER,           -- NULL while the first request is in flight
        answer      TEXT
    )"""
)
# A claim still without an answer belongs to a request that died with the last process:
# nobody will ever finish it, so free the key for the client's retry.
db.execute("DELETE FROM idempotency_keys WHERE status IS NULL")


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
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    deadline = time.monotonic() + WAIT_FOR_FIRST
    while True:
        # The primary key makes the claim atomic: of two requests with one key, one inserts.
        claimed = db.execute(
            "INSERT OR IGNORE INTO idempotency_keys (key, fingerprint) VALUES (?, ?)",
            (key, fingerprint),
        ).rowcount
        if claimed:
            return await charge(key, order, amount)

        row = db.execute(
            "SELECT fingerprint, status, answer FROM idempotency_keys WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            continue  # the first request failed and released the key: claim it ourselves
        stored_fingerprint, status, answer = row
        if stored_fingerprint != fingerprint:
            return JSONResponse(
                {"error": "this Idempotency-Key was used with a different request"},
                status_code=422,
            )
        if status is not None:
            return JSONResponse(
                json.loads(answer), status_code=status, headers={"Idempotent-Replayed": "true"}
            )
        if time.monotonic() > deadline:
            return JSONResponse(
                {"error": "a request with this Idempotency-Key is in progress; retry later"},
                status_code=409,
            )
        await asyncio.sleep(0.05)


async def charge(key: str, order: str, amount: int) -> JSONResponse:
    """Charge in the ledger for the request that holds `key`, and store the answer under it."""
    try:
        async with httpx.AsyncClient(timeout=5.0) as ledger:
            answer = await ledger.post(
                f"{LEDGER_URL}/entries", json={"order": order, "amount": amount}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        # Release the key so the client's retry can try again. Were the ledger to have written
        # the entry before failing, that retry would charge twice: only a ledger that takes
        # the key itself closes that gap (see the README).
        db.execute("DELETE FROM idempotency_keys WHERE key = ?", (key,))
        return JSONResponse({"error": f"ledger unavailable: {exc!r}"}, status_code=502)

    entry = answer.json()
    result = {"charge_id": entry["id"], "order": order, "amount": amount}
    db.execute(
        "UPDATE idempotency_keys SET status = ?, answer = ? WHERE key = ?",
        (201, json.dumps(result), key),
    )
    return JSONResponse(result, status_code=201)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/charges", create_charge, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
