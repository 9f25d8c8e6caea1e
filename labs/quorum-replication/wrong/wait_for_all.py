"""coordinator: the key-value store's front door. Clients talk to it; it keeps each value on
the three replicas, so that one of them can fail without losing data.

    PUT /kv/{key} {"value": "x"}  -> 200 {"key", "value"} once a majority of replicas stored it
    GET /kv/{key}                 -> 200 {"key", "value"} ("" for a key never written)

Either answers 503 when it cannot do that. See the lab's README for the whole protocol, and
for the replicas' own API.

Every operation talks to a majority (ABD): a write asks the replicas for the newest
version and stores its value one above it; a read takes the newest of their answers and,
before answering, makes sure a majority holds it. The coordinator hears every replica out
(or its timeout) before it counts, so it decides on everything there is to know.

Wrong: every operation waits for all three replicas (up to a generous 3 s timeout) before
counting a majority, so one unreachable replica makes every answer late, and a refusal too.
Rejected by: test_2_available_with_one_replica_down, test_3_refuses_without_a_majority
"""

import asyncio
import os
import uuid
from collections.abc import Awaitable
from typing import Any

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
MAJORITY = len(REPLICAS) // 2 + 1
# Generous: a replica that is merely busy should still get its say.
REPLICA_TIMEOUT = 3.0

replicas = httpx.AsyncClient(timeout=REPLICA_TIMEOUT)


class NoMajority(Exception):
    """Fewer than a majority of replicas answered."""


def newest(answers: list[dict[str, Any]]) -> dict[str, Any]:
    return max(answers, key=lambda a: (a["version"], a["writer"]))


async def from_majority(calls: list[Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Send every call at once and wait for all of them; return the answers if a majority
    answered, or raise NoMajority."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    answers = [r for r in results if not isinstance(r, BaseException)]
    if len(answers) < MAJORITY:
        raise NoMajority(f"{len(answers)} of {len(REPLICAS)} replicas answered")
    return answers


async def read_one(replica: str, key: str) -> dict[str, Any]:
    answer = await replicas.get(f"{replica}/kv/{key}")
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


async def write_one(replica: str, key: str, held: dict[str, Any]) -> dict[str, Any]:
    body = {"value": held["value"], "version": held["version"], "writer": held["writer"]}
    answer = await replicas.put(f"{replica}/kv/{key}", json=body)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


async def read_majority(key: str) -> list[dict[str, Any]]:
    return await from_majority([read_one(replica, key) for replica in REPLICAS])


async def write_majority(key: str, held: dict[str, Any]) -> None:
    await from_majority([write_one(replica, key, held) for replica in REPLICAS])


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = (await request.json()).get("value")
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)
    try:
        latest = newest(await read_majority(key))
        # One above anything a majority has seen; the random writer id orders two writes
        # that picked the same version, the same way on every replica.
        mine = {"version": latest["version"] + 1, "writer": uuid.uuid4().hex, "value": value}
        await write_majority(key, mine)
    except NoMajority as exc:
        return JSONResponse({"error": f"no majority: {exc}"}, status_code=503)
    return JSONResponse({"key": key, "value": value})


async def get(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    try:
        answers = await read_majority(key)
        latest = newest(answers)
        # Another read may already have returned this value, or will soon: make sure a
        # majority holds it before we answer, or the next read could miss it.
        if any(
            (a["version"], a["writer"]) != (latest["version"], latest["writer"]) for a in answers
        ):
            await write_majority(key, latest)
    except NoMajority as exc:
        return JSONResponse({"error": f"no majority: {exc}"}, status_code=503)
    return JSONResponse({"key": key, "value": latest["value"]})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", get, methods=["GET"]),
        Route("/kv/{key}", put, methods=["PUT"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
