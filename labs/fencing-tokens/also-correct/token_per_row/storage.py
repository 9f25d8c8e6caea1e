"""storage: a small key-value store the workers write their results to.

PUT /kv/{key} with a JSON body {"value": "...", "token": <fencing token>} stores the value;
GET /kv/{key} reads it back. See the lab's README for the whole protocol.

Each value is stored with the fencing token of the write that stored it. The highest token in
the table is the highest storage ever accepted (an accepted token is never below it), so a
write is accepted only if its token is at least that: one conditional statement checks and
writes at once.

Also correct: no separate fence; the token travels in the body and is kept per row, and one
INSERT ... SELECT ... WHERE compares it with the table's MAX(token).
"""

import os
import sqlite3
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DATABASE = Path(os.environ["STATE_DIR"]) / "storage.db"

db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute(
    """CREATE TABLE IF NOT EXISTS kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        token INTEGER NOT NULL
    )"""
)

PUT_IF_NOT_STALE = """
    INSERT INTO kv (key, value, token)
    SELECT :key, :value, :token
    WHERE :token >= (SELECT COALESCE(MAX(token), 0) FROM kv)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, token = excluded.token
"""


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    value, token = body.get("value"), body.get("token")
    if not isinstance(value, str) or not isinstance(token, int):
        return JSONResponse(
            {"error": 'expected {"value": "<text>", "token": <fencing token>}'}, status_code=400
        )
    stored = db.execute(PUT_IF_NOT_STALE, {"key": key, "value": value, "token": token}).rowcount
    if not stored:
        return JSONResponse(
            {"error": f"fencing token {token} is stale: storage has seen a newer lease"},
            status_code=409,
        )
    return JSONResponse({"key": key, "value": value})


async def get_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    if row is None:
        return JSONResponse({"error": f"no value for {key!r}"}, status_code=404)
    return JSONResponse({"key": key, "value": row[0]})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", put_value, methods=["PUT"]),
        Route("/kv/{key}", get_value, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
