"""relay: carries the orders service's events to the projection, at least once.

Owned by the lab, not by you. orders publishes each event here; the relay appends it to its log
(kept in SQLite, so a crash loses nothing), numbers it with a position, and delivers it to the
projection until the projection answers 2xx:

    POST /events {"id", "order", "version", "type", "customer"?, "amount"}
         201 appended, or 200 when an event with this id is in the log already (kept once)
    GET  /log    every event: its position, whether the projection has taken it, and every
                 delivery of it with what the projection answered

Delivery: POST {PROJECTION_URL}/events with the event and its "position". Each round delivers
the pending events (not yet answered 2xx) oldest first. One the projection does not take (an
error, no answer within DELIVERY_TIMEOUT, any non-2xx answer) is delivered again a little later,
while the events after it go on: so a later event can arrive before an earlier one. And a
delivery that timed out may still have reached the projection: the relay cannot tell.

Control routes, for the checks only: POST /control/hold and /control/release (deliver nothing
meanwhile), /control/order {"newest_first": bool} (deliver each round's events newest first),
/control/replay (deliver the whole log again, from position 1), and
/control/crash-after-delivery {"order", "version"} (die right after the projection took that
event, before the relay writes down that it did: the relay delivers it again once restarted).
"""

import asyncio
import json
import os
import sqlite3
import sys
import time
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

from harness.service_kit import with_chaos

PROJECTION_URL = os.environ["PROJECTION_URL"]
DATABASE = Path(os.environ["STATE_DIR"]) / "relay.db"
DELIVERY_TIMEOUT = 0.3  # seconds the relay waits for the projection's answer
# An event not taken is delivered again after RETRY_WAIT, doubling on each refusal up to
# MAX_RETRY_WAIT; other events go on meanwhile.
RETRY_WAIT = 0.1
MAX_RETRY_WAIT = 0.5
IDLE_WAIT = 0.02  # seconds between two looks at the log when nothing is pending

db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute(
    """CREATE TABLE IF NOT EXISTS log (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        id       TEXT NOT NULL UNIQUE,
        event    TEXT NOT NULL,
        taken    INTEGER NOT NULL DEFAULT 0   -- 1 once the projection answered 2xx
    )"""
)
db.execute(
    """CREATE TABLE IF NOT EXISTS deliveries (
        n        INTEGER PRIMARY KEY AUTOINCREMENT,
        position INTEGER NOT NULL,
        sent     REAL NOT NULL,               -- wall clock
        outcome  TEXT                         -- NULL: the relay died before it heard
    )"""
)

held = False
newest_first = False
crash_after: dict[str, Any] | None = None
FIELDS = {"placed": ("customer", "amount"), "amended": ("amount",)}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def invalid(event: Any) -> str:
    if not isinstance(event, dict):
        return "expected a JSON object"
    if not isinstance(event.get("id"), str) or not isinstance(event.get("order"), str):
        return 'expected string "id" and "order"'
    if not isinstance(event.get("version"), int) or event["version"] < 1:
        return 'expected "version": an integer from 1'
    if event.get("type") not in FIELDS:
        return f'expected "type": one of {sorted(FIELDS)}'
    missing = [name for name in FIELDS[event["type"]] if name not in event]
    return f"a {event['type']} event needs {missing}" if missing else ""


async def publish(request: Request) -> JSONResponse:
    try:
        event = await request.json()
    except ValueError:
        event = None
    problem = invalid(event)
    if problem:
        return JSONResponse({"error": problem}, status_code=400)
    added = db.execute(
        "INSERT OR IGNORE INTO log (id, event) VALUES (?, ?)", (event["id"], json.dumps(event))
    ).rowcount
    return JSONResponse({"id": event["id"]}, status_code=201 if added else 200)


async def show_log(request: Request) -> JSONResponse:
    deliveries: dict[int, list[dict[str, Any]]] = {}
    for position, sent, outcome in db.execute(
        "SELECT position, sent, outcome FROM deliveries ORDER BY n"
    ):
        deliveries.setdefault(position, []).append({"sent": sent, "outcome": outcome})
    return JSONResponse(
        [
            {
                "position": position,
                "event": json.loads(event),
                "taken": bool(taken),
                "deliveries": deliveries.get(position, []),
            }
            for position, event, taken in db.execute(
                "SELECT position, event, taken FROM log ORDER BY position"
            )
        ]
    )


async def control(request: Request) -> JSONResponse:
    global held, newest_first, crash_after
    what = request.path_params["what"]
    body = await request.json() if what in ("order", "crash-after-delivery") else {}
    if what == "hold":
        held = True
    elif what == "release":
        held = False
    elif what == "order":
        newest_first = bool(body.get("newest_first"))
    elif what == "replay":
        db.execute("UPDATE log SET taken = 0")
    elif what == "crash-after-delivery":
        crash_after = {"order": body["order"], "version": body["version"]}
    else:
        return JSONResponse({"error": f"no control {what}"}, status_code=404)
    return JSONResponse({"held": held, "newest_first": newest_first, "crash_after": crash_after})


async def deliver(projection: httpx.AsyncClient, position: int, event: dict[str, Any]) -> bool:
    """One delivery; True when the projection took the event (answered 2xx)."""
    delivery = db.execute(
        "INSERT INTO deliveries (position, sent) VALUES (?, ?)", (position, time.time())
    ).lastrowid
    try:
        answer = await projection.post("/events", json={**event, "position": position})
        outcome = f"{answer.status_code} {answer.text[:120]}"
        taken = 200 <= answer.status_code < 300
    except httpx.HTTPError as exc:
        outcome = f"no answer ({type(exc).__name__})"
        taken = False
    if taken and crash_after == {"order": event["order"], "version": event["version"]}:
        sys.stderr.write(f"relay: crash point: died right after delivering position {position}\n")
        sys.stderr.flush()
        os._exit(137)
    with db:
        db.execute("UPDATE deliveries SET outcome = ? WHERE n = ?", (outcome, delivery))
        if taken:
            db.execute("UPDATE log SET taken = 1 WHERE position = ?", (position,))
    return taken


async def relay() -> None:
    """Deliver pending events, round after round, for ever."""
    refused: dict[int, int] = {}  # position -> deliveries not taken in a row
    due: dict[int, float] = {}  # position -> when to deliver it again (monotonic)
    async with httpx.AsyncClient(base_url=PROJECTION_URL, timeout=DELIVERY_TIMEOUT) as projection:
        while True:
            now = time.monotonic()
            pending = (
                []
                if held
                else [
                    (position, event)
                    for position, event in db.execute(
                        "SELECT position, event FROM log WHERE taken = 0 ORDER BY position"
                    )
                    if due.get(position, 0.0) <= now
                ]
            )
            if not pending:
                await asyncio.sleep(IDLE_WAIT)
                continue
            if newest_first:
                pending.reverse()
            for position, event in pending:
                if held:
                    break
                if await deliver(projection, position, json.loads(event)):
                    refused.pop(position, None)
                    due.pop(position, None)
                else:
                    refused[position] = tries = refused.get(position, 0) + 1
                    wait = min(RETRY_WAIT * 2 ** (tries - 1), MAX_RETRY_WAIT)
                    due[position] = time.monotonic() + wait


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(relay())
    yield
    task.cancel()


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/events", publish, methods=["POST"]),
            Route("/log", show_log),
            Route("/control/{what}", control, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
