"""consumer: takes top-up messages from the broker and credits the wallets they name.

Each message is {"id": "m-17", "body": {"account": "acct-3", "amount": 250}} (amount in cents).
The consumer leases a message (GET /messages/next), applies it (credits the account and writes
a line in the statement), then acks it (POST /ack/{id}) so the broker does not deliver it again.

GET /accounts shows every balance and the statement, one line per credit applied, naming the
message it came from. The checks read it: keep its shape. See the lab's README for the broker.

A message is claimed in `processed` before it is credited and marked done after, each step
committed as soon as it is made, so that every redelivery finds out how far the message got: a
done message is skipped (and acked); a claimed one belongs to a consumer that died before its
credit, so the credit is made now.

Wrong: a claim without "done" is taken to mean "not credited yet", but a consumer killed between
the credit's commit and the "done" commit leaves exactly that over a credit already made: the
redelivery credits the top-up a second time.
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
    db.execute(
        "CREATE TABLE IF NOT EXISTS processed ("
        " message TEXT PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0)"  # 0: claimed, 1: credited
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS statement ("
        " line INTEGER PRIMARY KEY AUTOINCREMENT,"
        " message TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL)"
    )
    db.commit()
    return db


db = open_database()


def apply(message: dict[str, Any]) -> bool:
    """Credit the account and write the statement line, once per message id: claim the id,
    credit, then mark the id done, each step committed. Returns False for a message applied
    before (a redelivery)."""
    account, amount = message["body"]["account"], message["body"]["amount"]
    row = db.execute("SELECT done FROM processed WHERE message = ?", (message["id"],)).fetchone()
    if row is not None and row[0]:
        return False
    if row is None:
        with db:
            db.execute("INSERT INTO processed (message) VALUES (?)", (message["id"],))
    # Claimed, now or by a consumer that died before it could credit: credit it.
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
    with db:
        db.execute("UPDATE processed SET done = 1 WHERE message = ?", (message["id"],))
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
