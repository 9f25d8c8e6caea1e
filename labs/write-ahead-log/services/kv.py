"""kv: a small key-value store that keeps its data in a log file under $STATE_DIR.

PUT /kv/{key} with a JSON body {"value": "<text>"} stores the value and answers 200
{"key": ..., "value": ...}; GET /kv/{key} answers 200 {"key": ..., "value": ...}, or 404 for
a key that was never written. Every write is appended to the log as one JSON line; on start,
kv reads the log back to rebuild its data. See the lab's README for the whole protocol.
"""

import json
import os
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LOG = Path(os.environ["STATE_DIR"]) / "kv.log"

data: dict[str, str] = {}
if LOG.exists():
    with open(LOG, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            data[record["key"]] = record["value"]
log = open(LOG, "a", encoding="utf-8")  # noqa: SIM115 (open for the life of the process)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def get_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    if key not in data:
        return JSONResponse({"error": f"no key {key!r}"}, status_code=404)
    return JSONResponse({"key": key, "value": data[key]})


async def put_value(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)

    log.write(json.dumps({"key": key, "value": value}) + "\n")
    data[key] = value
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
