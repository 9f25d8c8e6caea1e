"""coordinator: the key-value store's front door. Clients talk to it; it keeps each value on
the three replicas, so that one of them can fail without losing data.

    PUT /kv/{key} {"value": "x"}  -> 200 {"key", "value"} once a majority of replicas stored it
    GET /kv/{key}                 -> 200 {"key", "value"} ("" for a key never written)

Either answers 503 when it cannot do that. See the lab's README for the whole protocol, and
for the replicas' own API.
"""

import asyncio
import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REPLICAS = [
    os.environ["REPLICA_A_URL"],
    os.environ["REPLICA_B_URL"],
    os.environ["REPLICA_C_URL"],
]
QUORUM = len(REPLICAS) // 2 + 1

replicas = httpx.AsyncClient()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def store(replica: str, key: str, value: str) -> None:
    answer = await replicas.put(f"{replica}/kv/{key}", json={"value": value})
    answer.raise_for_status()


async def put(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = (await request.json()).get("value")
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)

    # Write to every replica at once; the write holds when a majority has it.
    results = await asyncio.gather(
        *(store(replica, key, value) for replica in REPLICAS), return_exceptions=True
    )
    stored = sum(1 for result in results if not isinstance(result, Exception))
    if stored < QUORUM:
        return JSONResponse(
            {"error": f"stored on {stored} of {len(REPLICAS)} replicas"}, status_code=503
        )
    return JSONResponse({"key": key, "value": value})


async def get(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    # A majority has every write, so any replica that answers will do: try them in turn.
    for replica in REPLICAS:
        try:
            answer = await replicas.get(f"{replica}/kv/{key}")
            answer.raise_for_status()
        except httpx.HTTPError:
            continue
        return JSONResponse({"key": key, "value": answer.json()["value"]})
    return JSONResponse({"error": "no replica answered"}, status_code=503)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", get, methods=["GET"]),
        Route("/kv/{key}", put, methods=["PUT"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
