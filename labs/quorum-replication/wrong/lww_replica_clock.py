"""coordinator: the key-value store's front door. Clients talk to it; it keeps each value on
the three replicas, so that one of them can fail without losing data.

    PUT /kv/{key} {"value": "x"}  -> 200 {"key", "value"} once a majority of replicas stored it
    GET /kv/{key}                 -> 200 {"key", "value"} ("" for a key never written)

Either answers 503 when it cannot do that. See the lab's README for the whole protocol, and
for the replicas' own API.

Last writer wins: a write goes to every replica without a version, each replica stamps
it with its clock, and it holds once a majority has it. A read asks a majority, answers the
value with the latest stamp and, before answering, makes sure a majority holds it.

Wrong: versions are the replicas' wall-clock stamps, and replica-c's clock runs 10 s ahead, so
an older write it holds beats a newer one it missed.
Rejected by: test_1_every_key_is_linearizable
"""

import asyncio
import os
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
# A replica that has not answered in this time counts as down: a black-holed one must not
# hold a client (who may give up after a second) longer than that.
REPLICA_TIMEOUT = 0.5

replicas = httpx.AsyncClient(timeout=REPLICA_TIMEOUT)
background: set[asyncio.Task[Any]] = set()


class NoMajority(Exception):
    """Fewer than a majority of replicas answered."""


def newest(answers: list[dict[str, Any]]) -> dict[str, Any]:
    return max(answers, key=lambda a: (a["version"], a["writer"]))


async def from_majority(calls: list[Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Send every call at once; return as soon as a majority answered (the rest finish in
    the background), or raise NoMajority."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    answers: list[dict[str, Any]] = []
    for next_done in asyncio.as_completed(tasks):
        try:
            answers.append(await next_done)
        except httpx.HTTPError:
            continue
        if len(answers) >= MAJORITY:
            break
    for task in tasks:
        if not task.done():  # a late replica still gets the write; keep a reference
            background.add(task)
            task.add_done_callback(background.discard)
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


async def stamp_one(replica: str, key: str, value: str) -> dict[str, Any]:
    answer = await replicas.put(f"{replica}/kv/{key}", json={"value": value})
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
        # No version: each replica stamps the write with its own clock; the latest wins.
        await from_majority([stamp_one(replica, key, value) for replica in REPLICAS])
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
