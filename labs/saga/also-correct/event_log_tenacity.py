"""orchestrator: runs the order saga. Takes an order, then charges it, reserves its stock and
books its shipment, in that order; if a participant refuses a step, it undoes the steps already
done, in reverse.

POST /orders {"order": "o-17", "amount": 1200, "sku": "kettle", "qty": 1, "address": "..."}
answers 202 {"order": ...} once the order is in the log; the saga then runs in the background.
See the lab's README for the whole protocol.

The log is append-only: one row per order, and one event per answer a participant gave (a step
done, a step refused, a step undone, the saga's end). A saga's state is what its events say,
so a restarted orchestrator replays them and carries on from there. Retries are tenacity's.

Also correct: an append-only event log replayed at startup instead of a state row updated in
place, tenacity's AsyncRetrying for the retries, and keys of the form saga/action.
"""

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

DATABASE = Path(os.environ["STATE_DIR"]) / "saga-events.db"
STEPS = [
    ("PAYMENTS_URL", "charges", "refunds", ("amount",)),
    ("INVENTORY_URL", "reservations", "releases", ("sku", "qty")),
    ("SHIPPING_URL", "shipments", None, ("address",)),
]

db = sqlite3.connect(DATABASE, isolation_level=None)
db.executescript(
    """
    CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS events (
        seq   INTEGER PRIMARY KEY AUTOINCREMENT,
        saga  TEXT NOT NULL,
        event TEXT NOT NULL      -- done:<step>, refused:<step>, undone:<step>, end
    );
    """
)
tasks: dict[str, asyncio.Task[None]] = {}


class NotAnAnswer(Exception):
    """A 5xx: the participant may or may not have applied the call."""


def record(saga: str, event: str) -> None:
    db.execute("INSERT INTO events (saga, event) VALUES (?, ?)", (saga, event))


def history(saga: str) -> list[str]:
    rows = db.execute("SELECT event FROM events WHERE saga = ? ORDER BY seq", (saga,))
    return [event for (event,) in rows]


async def post(http: httpx.AsyncClient, url: str, key: str, body: dict[str, Any]) -> bool:
    """The participant's final answer to one call: done (True) or refused (False)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((httpx.HTTPError, NotAnAnswer)),
        wait=wait_exponential(multiplier=0.05, max=0.5),
    ):
        with attempt:
            answer = await http.post(url, json=body, headers={"Idempotency-Key": key})
            if answer.status_code >= 500:
                raise NotAnAnswer(f"{url}: {answer.status_code}")
    return answer.is_success


async def saga(order_id: str) -> None:
    (body,) = db.execute("SELECT body FROM orders WHERE id = ?", (order_id,)).fetchone()
    order = json.loads(body)
    events = history(order_id)
    if "end" in events:
        return
    done = [e.split(":", 1)[1] for e in events if e.startswith("done:")]
    undone = {e.split(":", 1)[1] for e in events if e.startswith("undone:")}
    refused = any(e.startswith("refused:") for e in events)
    async with httpx.AsyncClient(timeout=1.0) as http:
        for env, step, _, fields in STEPS[len(done) :]:
            if refused:
                break
            url = f"{os.environ[env]}/{step}/{order_id}"
            if await post(http, url, f"{order_id}/{step}", {f: order[f] for f in fields}):
                record(order_id, f"done:{step}")
                done.append(step)
            else:
                record(order_id, f"refused:{step}")
                refused = True
        if refused:
            for env, step, undo, _ in reversed(STEPS[: len(done)]):
                if undo is None or step in undone:
                    continue
                await post(http, f"{os.environ[env]}/{undo}/{order_id}", f"{order_id}/{undo}", {})
                record(order_id, f"undone:{step}")
    record(order_id, "end")


def launch(order_id: str) -> None:
    if order_id not in tasks:
        tasks[order_id] = asyncio.create_task(saga(order_id))
        tasks[order_id].add_done_callback(lambda _: tasks.pop(order_id, None))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    ended = {saga for (saga,) in db.execute("SELECT saga FROM events WHERE event = 'end'")}
    for (order_id,) in db.execute("SELECT id FROM orders").fetchall():
        if order_id not in ended:
            launch(order_id)
    yield


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def create_order(request: Request) -> JSONResponse:
    order = await request.json()
    if not isinstance(order.get("order"), str):
        return JSONResponse({"error": 'expected {"order": "<id>", ...}'}, status_code=400)
    db.execute(
        "INSERT OR IGNORE INTO orders (id, body) VALUES (?, ?)",
        (order["order"], json.dumps(order)),
    )
    launch(order["order"])
    return JSONResponse({"order": order["order"]}, status_code=202)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", create_order, methods=["POST"]),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
