"""replica: one of the three storage nodes. Owned by the lab, not by you.

It keeps one versioned value per key in SQLite, so a crash loses nothing it acknowledged:

    GET /kv/{key}                -> 200 {"key", "version", "writer", "value"}
                                    (version 0, writer "", value "" for a key never written)
    PUT /kv/{key} {"value": "x", "version": 7, "writer": "w1"}
                                 -> 200 {"key", "version", "writer", "value", "stored"}

A replica keeps the newest value it has been sent: a PUT is stored only if its (version,
writer) is above the one held, compared as a pair, so `writer` breaks a tie between two
writes with the same version; else the replica keeps what it has and says so
("stored": false). Either way it answers with what it now holds. A PUT without a version is
stamped with the replica's own clock (microseconds since the epoch, writer ""), the way
some databases stamp a write they are given without a timestamp.

It writes down every request it handles, in the same database, and shows them on
GET /requests: the checks read there which replicas the coordinator really asked. (A write the
checks make it fail, HTTP 500 from harness.service_kit.with_chaos, never reaches it: it is
neither stored nor written down.)
"""

import os
import sqlite3
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

DATABASE = Path(os.environ["STATE_DIR"]) / "replica.db"
# How far this machine's clock is off, in seconds (a replica whose time daemon has died).
CLOCK_SKEW = float(os.environ.get("CLOCK_SKEW", "0"))

db = sqlite3.connect(DATABASE, isolation_level=None, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")  # a process crash loses nothing committed
db.execute(
    """CREATE TABLE IF NOT EXISTS kv (
        key     TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        writer  TEXT NOT NULL,
        value   TEXT NOT NULL
    )"""
)
db.execute(
    """CREATE TABLE IF NOT EXISTS requests (
        id      INTEGER PRIMARY KEY,
        time    REAL NOT NULL,     -- wall-clock seconds when it arrived (never skewed)
        method  TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   TEXT,              -- what a PUT asked to store
        version INTEGER,
        writer  TEXT
    )"""
)


def held(key: str) -> dict[str, object]:
    row = db.execute("SELECT version, writer, value FROM kv WHERE key = ?", (key,)).fetchone()
    version, writer, value = row if row is not None else (0, "", "")
    return {"key": key, "version": version, "writer": writer, "value": value}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    db.execute("INSERT INTO requests (time, method, key) VALUES (?, 'GET', ?)", (time.time(), key))
    return JSONResponse(held(key))


async def write(request: Request) -> JSONResponse:
    arrived = time.time()
    key = request.path_params["key"]
    body = await request.json()
    value, version, writer = body.get("value"), body.get("version"), body.get("writer", "")
    if version is None:
        version, writer = int((time.time() + CLOCK_SKEW) * 1_000_000), ""
    db.execute(
        "INSERT INTO requests (time, method, key, value, version, writer)"
        " VALUES (?, 'PUT', ?, ?, ?, ?)",
        (arrived, key, value if isinstance(value, str) else None, version, writer),
    )
    if not isinstance(value, str) or not isinstance(version, int) or not isinstance(writer, str):
        return JSONResponse(
            {"error": 'expected {"value": "<text>", "version": <int>, "writer": "<text>"}'},
            status_code=400,
        )
    current = held(key)
    stored = (version, writer) > (current["version"], current["writer"])
    if stored:
        db.execute(
            "INSERT OR REPLACE INTO kv (key, version, writer, value) VALUES (?, ?, ?, ?)",
            (key, version, writer, value),
        )
    return JSONResponse({**held(key), "stored": stored})


async def requests(request: Request) -> JSONResponse:
    rows = db.execute(
        "SELECT time, method, key, value, version, writer FROM requests ORDER BY id"
    ).fetchall()
    names = ("time", "method", "key", "value", "version", "writer")
    return JSONResponse([dict(zip(names, row, strict=True)) for row in rows])


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/kv/{key}", read, methods=["GET"]),
            Route("/kv/{key}", write, methods=["PUT"]),
            Route("/requests", requests, methods=["GET"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
