"""storage: a small key-value store the workers write their results to.

PUT /kv/{key} with a JSON body {"value": "..."} and a `Fencing-Token` header stores the value;
GET /kv/{key} reads it back. See the lab's README for the whole protocol.

Only the holder of the newest lease may write. Storage remembers the highest fencing token it
has accepted, in the same database as the data, and accepts only a write with a higher one:
anything else may come from a writer whose lease was granted to someone else.

Wrong: it refuses a token equal to the highest seen (> instead of >=), so the lease holder's
second write is refused and work stops.
Rejected by: test_2_final_state_is_what_valid_holders_wrote, test_3_work_continues_after_the_pause
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

    # Check and write in one transaction: nothing can slip in between.
    db.execute("BEGIN IMMEDIATE")
    try:
        (highest,) = db.execute("SELECT highest FROM fence WHERE id = 1").fetchone()
        if token <= highest:
            return JSONResponse(
                {"error": f"fencing token {token} is stale: storage has seen {highest}"},
                status_code=409,
            )
        db.execute("UPDATE fence SET highest = ? WHERE id = 1", (token,))
        db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
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
