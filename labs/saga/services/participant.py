"""What payments, inventory and shipping share: one step of the order saga, its compensation,
and a record of every call. Owned by the lab, not by you.

A participant applies a step once per Idempotency-Key: the same key again gets the first answer
back and changes nothing. A call without a key is applied every time, as a new one: a
compensation too, once the saga's step was applied (a second refund pays back twice, as a real
one would). A compensation for a step that was not applied (yet) is recorded as "nothing to
undo", and a step for that saga arriving later is refused (409): a late step must not take
money or stock that was already given back.

Every call is written down in SQLite under $STATE_DIR, in the same transaction as its effect,
so the record survives a crash: GET /calls lists them all (the checks judge the saga from it).
"""

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

# Why a step's request is refused for good (a business answer, not a fault), or None.
Refusal = Callable[[dict[str, Any]], str | None]


def serve(step: str, undo: str | None, refuse: Refusal, refused_status: int) -> None:
    """Run the participant: POST /<step>/{saga}, POST /<undo>/{saga}, GET /calls."""
    db = sqlite3.connect(Path(os.environ["STATE_DIR"]) / "participant.db", isolation_level=None)
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS calls (
            seq    INTEGER PRIMARY KEY,
            time   REAL NOT NULL,
            action TEXT NOT NULL,   -- the step or the compensation
            saga   TEXT NOT NULL,
            key    TEXT,            -- the Idempotency-Key header, if any
            effect TEXT NOT NULL,   -- applied, replayed, refused, too late, nothing to undo
            status INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS answers (
            key    TEXT PRIMARY KEY,
            status INTEGER NOT NULL,
            body   TEXT NOT NULL
        );
        """
    )

    def count(saga: str, action: str, effects: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(effects))
        row = db.execute(
            f"SELECT COUNT(*) FROM calls WHERE saga = ? AND action = ? AND effect IN ({marks})",
            (saga, action, *effects),
        ).fetchone()
        return int(row[0])

    def handle(action: str, saga: str, key: str | None, decide: Callable[[], tuple[str, int]]):
        # No await from here to the commit: one call at a time, so a key is claimed atomically.
        db.execute("BEGIN IMMEDIATE")
        try:
            stored = (
                db.execute("SELECT status, body FROM answers WHERE key = ?", (key,)).fetchone()
                if key
                else None
            )
            if stored is not None:
                effect, status, body = "replayed", stored[0], json.loads(stored[1])
            else:
                effect, status = decide()
                body = {"saga": saga, "action": action, "effect": effect}
                if key:
                    db.execute(
                        "INSERT INTO answers (key, status, body) VALUES (?, ?, ?)",
                        (key, status, json.dumps(body)),
                    )
            db.execute(
                "INSERT INTO calls (time, action, saga, key, effect, status)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), action, saga, key, effect, status),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return JSONResponse(body, status_code=status)

    async def do_step(request: Request) -> JSONResponse:
        saga = request.path_params["saga"]
        body = await request.json()

        def decide() -> tuple[str, int]:
            if undo and count(saga, undo, ("applied", "nothing to undo")):
                return "too late", 409
            if refuse(body):
                return "refused", refused_status
            return "applied", 201

        return handle(step, saga, request.headers.get("Idempotency-Key"), decide)

    async def do_undo(request: Request) -> JSONResponse:
        saga = request.path_params["saga"]
        assert undo is not None

        def decide() -> tuple[str, int]:
            if count(saga, step, ("applied",)):
                return "applied", 200
            return "nothing to undo", 200

        return handle(undo, saga, request.headers.get("Idempotency-Key"), decide)

    async def calls(request: Request) -> JSONResponse:
        rows = db.execute(
            "SELECT seq, time, action, saga, key, effect, status FROM calls ORDER BY seq"
        ).fetchall()
        names = ("seq", "time", "action", "saga", "key", "effect", "status")
        return JSONResponse([dict(zip(names, row, strict=True)) for row in rows])

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/health", health),
        Route("/calls", calls),
        Route(f"/{step}/{{saga}}", do_step, methods=["POST"]),
    ]
    if undo:
        routes.append(Route(f"/{undo}/{{saga}}", do_undo, methods=["POST"]))
    app = with_chaos(Starlette(routes=routes))
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
