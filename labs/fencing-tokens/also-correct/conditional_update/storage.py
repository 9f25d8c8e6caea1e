"""storage: a small key-value store the workers write their results to.

PUT /kv/{key} with a JSON body {"value": "..."} and a `Fencing-Token` header stores the value;
GET /kv/{key} reads it back. See the lab's README for the whole protocol.

Only the holder of the newest lease may write. The fence is one row holding the highest token
accepted; a write first tries to raise it to its own token, and only if that succeeds (its
token is not below the fence) is the value stored.

Also correct: no explicit transaction; one conditional UPDATE of the fence (its rowcount)
decides, then the value is stored in a second autocommitted statement.
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

# Autocommit outside explicit transactions: each statement is on disk before the next line runs.
db = sqlite3.connect(DATABASE, isolation_level=None)
db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
# One lease covers the whole store, so one fence for the whole store: the highest token seen.
db.execute(
    "CREATE TABLE IF NOT EXISTS fence (id INTEGER PRIMARY KEY CHECK (id = 1), highest INTEGER)"
)
db.execute("INSERT OR IGNORE INTO fence (id, highest) VALUES (1, 0)")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = (await request.json()).get("value")
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)
    try:
        token = int(request.headers["Fencing-Token"])
    except (KeyError, ValueError):
        return JSONResponse({"error": "send the lease's Fencing-Token header"}, status_code=400)

    # Raising the fence is the check: the UPDATE matches only if no newer lease wrote before.
    raised = db.execute(
        "UPDATE fence SET highest = :token WHERE id = 1 AND highest <= :token", {"token": token}
    ).rowcount
    if not raised:
        return JSONResponse({"error": f"fencing token {token} is stale"}, status_code=409)
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
