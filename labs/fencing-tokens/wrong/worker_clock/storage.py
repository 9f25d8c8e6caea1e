"""storage: a small key-value store the workers write their results to.

PUT /kv/{key} with a JSON body {"value": "..."} stores the value; GET /kv/{key} reads it back.
Only the worker that holds the lease from the lock service is meant to write. See the lab's
README for the whole protocol.
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

# Autocommit: each statement is on disk before the next line runs.
db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = (await request.json()).get("value")
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)
    db.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
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
