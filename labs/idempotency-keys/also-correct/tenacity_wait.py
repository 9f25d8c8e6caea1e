"""payments: takes a charge from a client and records it in the ledger, once per idempotency key.

A key is claimed by a plain INSERT (the primary key refuses a second one) before the ledger is
called, and the answer is stored under it after. A duplicate polls for the first answer with
tenacity and gives up with 409; a claim that a crash left without an answer is never charged
again, its retries run out of patience the same way.

Also correct: claims by catching IntegrityError, keeps the request's canonical JSON rather than
a hash, waits for the first answer with a tenacity retry policy, and leaves orphaned claims
in place (their retries get 409 after the wait) instead of marking them at startup.
"""

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
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

LEDGER_URL = os.environ["LEDGER_URL"]
DATABASE = Path(os.environ["STATE_DIR"]) / "payments.db"
WAIT_FOR_FIRST = 1.0  # seconds a duplicate waits for the request that holds its key

db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute(
    """CREATE TABLE IF NOT EXISTS requests (
        key      TEXT PRIMARY KEY,
        request  TEXT NOT NULL,        -- the body, as canonical JSON
        response TEXT                  -- [status, body], NULL until the first one is answered
    )"""
)
Row = tuple[str, str | None] | None


def unanswered(row: Row) -> bool:
    return row is not None and row[1] is None


@retry(
    retry=retry_if_result(unanswered),
    stop=stop_after_delay(WAIT_FOR_FIRST),
    wait=wait_fixed(0.05),
    retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
)
async def settled(key: str) -> Row:
    """The key's row once it has an answer (or is gone), or as it is when patience runs out."""
    row: Row = db.execute("SELECT request, response FROM requests WHERE key = ?", (key,)).fetchone()
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
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))

    while True:
        try:
            db.execute("INSERT INTO requests (key, request) VALUES (?, ?)", (key, canonical))
        except sqlite3.IntegrityError:
            pass  # someone holds the key: see below what they asked for and got
        else:
            return await charge(key, order, amount)

        row = await settled(key)
        if row is None:
            continue  # the first request failed and released the key: claim it ourselves
        first_request, response = row
        if first_request != canonical:
            return JSONResponse(
                {"error": "this Idempotency-Key was used with a different request"},
                status_code=422,
            )
        if response is None:
            return JSONResponse(
                {"error": "a request with this Idempotency-Key is in progress; retry later"},
                status_code=409,
            )
        status, answer = json.loads(response)
        return JSONResponse(answer, status_code=status, headers={"Idempotent-Replayed": "true"})


async def charge(key: str, order: str, amount: int) -> JSONResponse:
    """Charge in the ledger for the request that holds `key`, and store the answer under it."""
    try:
        async with httpx.AsyncClient(timeout=5.0) as ledger:
            answer = await ledger.post(
                f"{LEDGER_URL}/entries", json={"order": order, "amount": amount}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        db.execute("DELETE FROM requests WHERE key = ?", (key,))  # the retry may try again
        return JSONResponse({"error": f"ledger unavailable: {exc!r}"}, status_code=502)

    result = {"charge_id": answer.json()["id"], "order": order, "amount": amount}
    db.execute("UPDATE requests SET response = ? WHERE key = ?", (json.dumps([201, result]), key))
    return JSONResponse(result, status_code=201)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/charges", create_charge, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
