"""coordinator: the key-value store's front door. Clients talk to it; it keeps each value on
the three replicas, so that one of them can fail without losing data.

    PUT /kv/{key} {"value": "x"}  -> 200 {"key", "value"} once a majority of replicas stored it
    GET /kv/{key}                 -> 200 {"key", "value"} ("" for a key never written)

Either answers 503 when it cannot do that. See the lab's README for the whole protocol, and
for the replicas' own API.

Every operation talks to a majority (ABD): a write asks a majority for the newest version and
stores its value one above it; a read takes the newest of a majority's answers and answers it
at once; when the answers disagreed, it repairs the replicas that are behind in the background
(read repair, as Cassandra does), so a read never waits for a write.

Wrong: a read answers before its write-back reached a majority, so the value it returned may
still be on one replica only (a write that reached just one before it failed): the next read,
asking the other two, returns the older value, and the clients see time go backwards.
Rejected by: test_1_every_key_is_linearizable
"""

import asyncio
import contextlib
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


async def read_majority(key: str) -> list[dict[str, Any]]:
    return await from_majority([read_one(replica, key) for replica in REPLICAS])


async def write_majority(key: str, held: dict[str, Any]) -> None:
    await from_majority([write_one(replica, key, held) for replica in REPLICAS])


def repair(key: str, held: dict[str, Any]) -> None:
    """Write `held` back to the replicas in the background (read repair)."""

    async def write_back() -> None:
        with contextlib.suppress(NoMajority):  # the next read repairs it
            await write_majority(key, held)

    task = asyncio.ensure_future(write_back())
    background.add(task)
    task.add_done_callback(background.discard)


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
        # Replicas that are behind get the newest value, without holding up this answer.
        if any(
            (a["version"], a["writer"]) != (latest["version"], latest["writer"]) for a in answers
        ):
            repair(key, latest)  # the replicas catch up; the client need not wait for it
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
