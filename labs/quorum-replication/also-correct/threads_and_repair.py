"""coordinator: the key-value store's front door. Clients talk to it; it keeps each value on
the three replicas, so that one of them can fail without losing data.

    PUT /kv/{key} {"value": "x"}  -> 200 {"key", "value"} once a majority of replicas stored it
    GET /kv/{key}                 -> 200 {"key", "value"} ("" for a key never written)

Either answers 503 when it cannot do that. See the lab's README for the whole protocol, and
for the replicas' own API.

Plain threads: each request runs in a worker thread and fans out to the replicas on a thread
pool, taking the first answers that make a majority. A write tags its value one above the
newest version a majority knows; a read answers the newest value a majority reported, after
repairing the replicas that answered with something older, until a majority holds it.

Also correct: synchronous handlers and a thread pool instead of asyncio, and a read repairs
only the replicas it saw behind (those already up to date count towards the majority).
"""

import contextlib
import os
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REPLICAS = [
    os.environ["REPLICA_A_URL"],
    os.environ["REPLICA_B_URL"],
    os.environ["REPLICA_C_URL"],
]
MAJORITY = len(REPLICAS) // 2 + 1
REPLICA_TIMEOUT = 0.4  # a replica slower than this is as good as down

http = httpx.Client(timeout=REPLICA_TIMEOUT)
pool = ThreadPoolExecutor(max_workers=64)

Held = dict[str, Any]  # what a replica holds for a key: version, writer, value


def tag(held: Held) -> tuple[int, str]:
    return (held["version"], held["writer"])


def gather(calls: dict[str, Callable[[], Held]], needed: int) -> dict[str, Held]:
    """Run the calls (by replica) at once; the answers as soon as `needed` have come, or
    fewer if the others failed."""
    futures: dict[Future[Held], str] = {pool.submit(call): name for name, call in calls.items()}
    answers: dict[str, Held] = {}
    pending = set(futures)
    while pending and len(answers) < needed:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            with contextlib.suppress(httpx.HTTPError):  # a failed replica gives no answer
                answers[futures[future]] = future.result()
    return answers


def fetch(replica: str, key: str) -> Callable[[], Held]:
    def call() -> Held:
        response = http.get(f"{replica}/kv/{key}")
        response.raise_for_status()
        held: Held = response.json()
        return held

    return call


def store(replica: str, key: str, held: Held) -> Callable[[], Held]:
    def call() -> Held:
        body = {"value": held["value"], "version": held["version"], "writer": held["writer"]}
        response = http.put(f"{replica}/kv/{key}", json=body)
        response.raise_for_status()
        answer: Held = response.json()
        return answer

    return call


def refused(why: str) -> JSONResponse:
    return JSONResponse({"error": f"no majority: {why}"}, status_code=503)


def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def put(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = (await request.json()).get("value")
    if not isinstance(value, str):
        return JSONResponse({"error": 'expected {"value": "<text>"}'}, status_code=400)
    return await run_in_threadpool(write, key, value)


def write(key: str, value: str) -> JSONResponse:
    seen = gather({r: fetch(r, key) for r in REPLICAS}, MAJORITY)
    if len(seen) < MAJORITY:
        return refused(f"{len(seen)} of {len(REPLICAS)} replicas answered the read")
    top = max(seen.values(), key=tag)
    mine = {"version": top["version"] + 1, "writer": uuid.uuid4().hex, "value": value}
    acks = gather({r: store(r, key, mine) for r in REPLICAS}, MAJORITY)
    if len(acks) < MAJORITY:
        return refused(f"{len(acks)} of {len(REPLICAS)} replicas stored the write")
    return JSONResponse({"key": key, "value": value})


def get(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    seen = gather({r: fetch(r, key) for r in REPLICAS}, MAJORITY)
    if len(seen) < MAJORITY:
        return refused(f"{len(seen)} of {len(REPLICAS)} replicas answered")
    top = max(seen.values(), key=tag)
    holding = [r for r, held in seen.items() if tag(held) == tag(top)]
    if len(holding) < MAJORITY:
        behind = [r for r in REPLICAS if r not in holding]
        repaired = gather({r: store(r, key, top) for r in behind}, MAJORITY - len(holding))
        if len(holding) + len(repaired) < MAJORITY:
            return refused("could not bring a majority up to date")
    return JSONResponse({"key": key, "value": top["value"]})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", get, methods=["GET"]),
        Route("/kv/{key}", put, methods=["PUT"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
