"""payments: takes a charge from a client and records it in the ledger, once per idempotency key.

Every answer is stored in SQLite under its key, with a fingerprint of the body, so a retry gets
the first answer again instead of a second charge, even from a restarted payments.

Wrong: the key is written down only after the ledger answered, so a copy that arrives while the
first is still in flight (or after a crash in that moment) finds no key and charges again.
Rejected by: test_1_every_charge_applied_once, test_2_every_answer_agrees_with_the_ledger,
    test_4_concurrent_duplicates_charge_once,
    test_6_a_crash_in_the_middle_of_a_charge_charges_at_most_once
"""

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LEDGER_URL = os.environ["LEDGER_URL"]
DATABASE = Path(os.environ["STATE_DIR"]) / "payments.db"

db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute(
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        status      INTEGER NOT NULL,
        answer      TEXT NOT NULL
    )"""
)


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

    seen = db.execute(
        "SELECT fingerprint, status, answer FROM idempotency_keys WHERE key = ?", (key,)
    ).fetchone()
    if seen is not None:
        stored_fingerprint, status, answer = seen
        if stored_fingerprint != fingerprint:
            return JSONResponse(
                {"error": "this Idempotency-Key was used with a different request"},
                status_code=422,
            )
        return JSONResponse(
            json.loads(answer), status_code=status, headers={"Idempotent-Replayed": "true"}
        )

    try:
        async with httpx.AsyncClient(timeout=5.0) as ledger:
            answer = await ledger.post(
                f"{LEDGER_URL}/entries", json={"order": order, "amount": amount}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        return JSONResponse({"error": f"ledger unavailable: {exc!r}"}, status_code=502)

    entry = answer.json()
    result = {"charge_id": entry["id"], "order": order, "amount": amount}
    db.execute(
        "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, status, answer) "
        "VALUES (?, ?, ?, ?)",
        (key, fingerprint, 201, json.dumps(result)),
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
