"""kv: a small key-value store that keeps its data in a write-ahead log under $STATE_DIR.

PUT /kv/{key} with a JSON body {"value": "<text>"} stores the value and answers 200
{"key": ..., "value": ...}; GET /kv/{key} answers 200 {"key": ..., "value": ...}, or 404 for
a key that was never written. See the lab's README for the whole protocol.

Every write is appended to the log as one record (length, CRC-32, payload) and fsynced before
it is acknowledged. On start, kv replays the log and cuts off a torn tail: the first record
that is short or fails its checksum, and everything after it. When the log holds mostly
overwritten values, it is compacted: the live records go to a new file, which is fsynced and
then renamed over the log, so a crash leaves either the old log or the new one, whole.

Wrong: replay reads records while any byte is left, so a log torn inside a record's header
(fewer bytes than a header) raises struct.error, and kv does not start at all.
Rejected by: test_3_a_torn_tail_is_dropped
"""

import json
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STATE_DIR = Path(os.environ["STATE_DIR"])
LOG = STATE_DIR / "kv.log"
COMPACTING = STATE_DIR / "kv.log.compacting"
HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload
MIN_COMPACT_BYTES = 64 * 1024  # a log this small is not worth compacting

data: dict[str, str] = {}
sizes: dict[str, int] = {}  # key -> bytes its live record takes in the log


def encode(key: str, value: str) -> bytes:
    payload = json.dumps({"key": key, "value": value}).encode()
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def replay(raw: bytes) -> int:
    """Load every whole record of `raw` into `data`; returns where the good records end."""
    offset = 0
    while offset < len(raw):
        length, checksum = HEADER.unpack_from(raw, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        payload = raw[start:end]
        if end > len(raw) or zlib.crc32(payload) != checksum:
            break  # a torn tail: the write was cut short by a crash
        record = json.loads(payload)
        data[record["key"]] = record["value"]
        sizes[record["key"]] = end - offset
        offset = end
    return offset


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_log() -> tuple[BinaryIO, int]:
    """Replay the log, cut off a torn tail on disk, and open it for appending."""
    COMPACTING.unlink(missing_ok=True)  # a compaction that a crash interrupted
    raw = LOG.read_bytes() if LOG.exists() else b""
    good = replay(raw)
    if good < len(raw):
        with open(LOG, "r+b") as torn:
            torn.truncate(good)
            torn.flush()
            os.fsync(torn.fileno())
    return open(LOG, "ab"), good


def compact() -> None:
    """Write the live records to a new file, make it durable, and rename it over the log."""
    global log, log_size
    with open(COMPACTING, "wb") as fresh:
        for key, value in data.items():
            fresh.write(encode(key, value))
        fresh.flush()
        os.fsync(fresh.fileno())
        log_size = fresh.tell()
    log.close()
    os.replace(COMPACTING, LOG)
    fsync_dir(STATE_DIR)
    log = open(LOG, "ab")  # noqa: SIM115


log, log_size = open_log()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def get_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    if key not in data:
        return JSONResponse({"error": f"no key {key!r}"}, status_code=404)
    return JSONResponse({"key": key, "value": data[key]})


async def put_value(request: Request) -> JSONResponse:
    global log_size
    key = request.path_params["key"]
    body = await request.json()
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)

    record = encode(key, value)
    log.write(record)
    log.flush()
    os.fsync(log.fileno())  # durable before anyone hears "ok"
    log_size += len(record)
    data[key] = value
    sizes[key] = len(record)
    if log_size > max(MIN_COMPACT_BYTES, 2 * sum(sizes.values())):
        compact()
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
