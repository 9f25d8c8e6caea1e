"""consumer: takes top-up messages from the broker and credits the wallets they name.

Each message is {"id": "m-17", "body": {"account": "acct-3", "amount": 250}} (amount in cents).
The consumer leases a message (GET /messages/next), applies it (credits the account and writes
a line in the statement), then acks it (POST /ack/{id}) so the broker does not deliver it again.

GET /accounts shows every balance and the statement, one line per credit applied, naming the
message it came from. The checks read it: keep its shape. See the lab's README for the broker.

A message id is remembered once its credit is in, so that a redelivery is skipped.

Wrong: the credit and the processed message id are committed in two transactions, credit first: a
    crash between the two commits credits the redelivery again.
Rejected by: test_1_every_message_applied_once, test_3_every_balance_adds_up
"""

import asyncio
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

BROKER_URL = os.environ["BROKER_URL"]
DATABASE = Path(os.environ["STATE_DIR"]) / "wallets.db"
CONSUMER = f"consumer-{os.getpid()}"
IDLE_WAIT = 0.1  # seconds to wait when the queue is empty or the broker is unreachable


def open_database() -> sqlite3.Connection:
    db = sqlite3.connect(DATABASE)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)"
    )
    db.execute("CREATE TABLE IF NOT EXISTS processed (message TEXT PRIMARY KEY)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS statement ("
        " line INTEGER PRIMARY KEY AUTOINCREMENT,"
        " message TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL)"
    )
    db.commit()
    return db


db = open_database()


def already_applied(message_id: str) -> bool:
    row = db.execute("SELECT 1 FROM processed WHERE message = ?", (message_id,)).fetchone()
    return row is not None


def credit(message: dict[str, Any]) -> None:
    """Credit the account and write the statement line, in one transaction."""
    account, amount = message["body"]["account"], message["body"]["amount"]
    with db:
        db.execute(
            "INSERT INTO statement (message, account, amount) VALUES (?, ?, ?)",
            (message["id"], account, amount),
        )
        db.execute(
            "INSERT INTO balances (account, balance) VALUES (?, ?)"
            " ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
            (account, amount),
        )


def mark_applied(message_id: str) -> None:
    with db:
        db.execute("INSERT INTO processed (message) VALUES (?)", (message_id,))


def apply(message: dict[str, Any]) -> bool:
    """Apply a message once: skip it if its id is in `processed`. Returns False for a
    redelivery."""
    if already_applied(message["id"]):
        return False
    credit(message)
    mark_applied(message["id"])
    return True


async def consume() -> None:
    """Lease, apply, ack; for ever."""
    async with httpx.AsyncClient(base_url=BROKER_URL, timeout=5.0) as broker:
        while True:
            try:
                response = await broker.get("/messages/next", params={"consumer": CONSUMER})
                if response.status_code == 204:
                    await asyncio.sleep(IDLE_WAIT)
                    continue
                response.raise_for_status()
                message = response.json()
                if not apply(message):
                    print(f"{message['id']} applied before (delivery {message['delivery']})")
                # Ack a redelivery too: it is done, and unacked it would come back for ever.
                acked = await broker.post(f"/ack/{message['id']}")
                if acked.status_code != 200:
                    print(f"ack of {message['id']} refused: {acked.status_code} {acked.text}")
            except httpx.HTTPError as exc:
                print(f"broker unreachable: {exc!r}")
                await asyncio.sleep(IDLE_WAIT)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def accounts(request: Request) -> JSONResponse:
    balances = dict(db.execute("SELECT account, balance FROM balances ORDER BY account"))
    statement = [
        {"line": line, "message": message, "account": account, "amount": amount}
        for line, message, account, amount in db.execute(
            "SELECT line, message, account, amount FROM statement ORDER BY line"
        )
    ]
    return JSONResponse({"balances": balances, "statement": statement})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(consume())
    yield
    task.cancel()


app = Starlette(
    routes=[Route("/health", health), Route("/accounts", accounts)],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
