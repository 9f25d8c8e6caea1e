"""records: keeps customers' documents, sealed, in SQLite. See the lab's README.

PUT /records/{id} {"owner": "acme", "document": "..."} stores (or replaces) a record: 200.
GET /records/{id} answers 200 {"id", "owner", "document"}, or 404.
POST /admin/backup copies the database into $STATE_DIR/backups/: 201 {"file"}.
POST /admin/rewrap has every data key wrapped by the KMS's current key: 200 {"rewrapped"}.
"""

import os
import sqlite3
import time
from pathlib import Path

import uvicorn
from services import envelope
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STATE = Path(os.environ["STATE_DIR"])
SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    id TEXT PRIMARY KEY, kek TEXT NOT NULL, wrapped_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, key_id TEXT NOT NULL,
    nonce BLOB NOT NULL, ciphertext BLOB NOT NULL);
"""

db = sqlite3.connect(STATE / "records.db", isolation_level=None, check_same_thread=False)
db.executescript(SCHEMA)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put_record(request: Request) -> JSONResponse:
    record_id = request.path_params["id"]
    body = await request.json()
    try:
        key_id, nonce, ciphertext = await envelope.seal(
            db, body["owner"], record_id, body["document"].encode()
        )
    except envelope.KeyServiceDown as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    db.execute(
        "INSERT INTO records (id, owner, key_id, nonce, ciphertext) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, key_id = excluded.key_id, "
        "nonce = excluded.nonce, ciphertext = excluded.ciphertext",
        (record_id, body["owner"], key_id, nonce, ciphertext),
    )
    return JSONResponse({"id": record_id, "owner": body["owner"]})


async def get_record(request: Request) -> JSONResponse:
    record_id = request.path_params["id"]
    row = db.execute(
        "SELECT owner, key_id, nonce, ciphertext FROM records WHERE id = ?", (record_id,)
    ).fetchone()
    if row is None:
        return JSONResponse({"error": "no such record"}, status_code=404)
    owner, key_id, nonce, ciphertext = row
    try:
        document = await envelope.open_sealed(db, record_id, key_id, nonce, ciphertext)
    except envelope.KeyServiceDown as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    except envelope.Unreadable as exc:
        return JSONResponse({"error": f"record {record_id} cannot be read: {exc}"}, 500)
    return JSONResponse({"id": record_id, "owner": owner, "document": document.decode()})


async def backup(request: Request) -> JSONResponse:
    folder = STATE / "backups"
    folder.mkdir(exist_ok=True)
    target = folder / f"records-{time.time_ns()}.db"
    copy = sqlite3.connect(target)
    try:
        db.backup(copy)
    finally:
        copy.close()
    return JSONResponse({"file": target.name}, status_code=201)


async def rewrap(request: Request) -> JSONResponse:
    try:
        count = await envelope.rewrap_all(db)
    except envelope.KeyServiceDown as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    return JSONResponse({"rewrapped": count})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/records/{id}", put_record, methods=["PUT"]),
        Route("/records/{id}", get_record, methods=["GET"]),
        Route("/admin/backup", backup, methods=["POST"]),
        Route("/admin/rewrap", rewrap, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
