"""replica: one of three replicas of the posts service (likes and tags per post).

Owned by the lab, not by you. It answers clients on its own, whatever the network does, keeps
the replica's state (in memory, and in SQLite under $STATE_DIR, so a restart keeps it), and
every 50 ms sends its whole state to each peer's POST /merge, through Toxiproxy, until that peer
has acknowledged that very state (anti-entropy).
What the state looks like, how a write changes it, and how two states merge is yours:
services/crdt.py.

    POST   /posts/{post}/likes        {"delta": 1} (a like) or {"delta": -1} (an unlike)
    POST   /posts/{post}/tags         {"tag": "hot"}
    DELETE /posts/{post}/tags/{tag}
    GET    /posts/{post}              {"post", "likes", "tags"}
    POST   /merge                     {"from": "replica-b", "state": <replica-b's state>}
    GET    /state                     this replica's state, as crdt.py shapes it

Every answer to a write carries the post's value on this replica afterwards. The checks read
what every /merge delivered on the chaos route's record (harness.service_kit.with_chaos), and
can delay deliveries there.
"""

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos
from services import crdt

REPLICA = os.environ["SERVICE_NAME"]
PEERS = {
    name.removesuffix("_URL").lower().replace("_", "-"): url
    for name, url in os.environ.items()
    if name.startswith("REPLICA_") and name.endswith("_URL")
}
INTERVAL = 0.05  # seconds between two rounds of anti-entropy
PUSH_TIMEOUT = 0.5  # a delivery across a partition waits this long, then is given up
MAX_IN_FLIGHT = 8  # deliveries to one peer still waiting; more are skipped, not queued

log = logging.getLogger("replica")
db = sqlite3.connect(Path(os.environ["STATE_DIR"]) / "replica.db", isolation_level=None)
# A write survives the process being killed (the WAL is in the OS's hands), without an fsync
# per change: a busy replica merges 40 states a second.
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
row = db.execute("SELECT body FROM state WHERE id = 1").fetchone()
state: Any = json.loads(row[0]) if row else crdt.new_state()
saved = row[0] if row else ""
in_flight = dict.fromkeys(PEERS, 0)
acknowledged = dict.fromkeys(PEERS, "")  # the last state each peer answered 200 to


def change(update: Callable[[Any], Any]) -> None:
    """Apply one change to the state and keep it (only when it really changed)."""
    global state, saved
    state = update(state)
    body = json.dumps(state, sort_keys=True)
    if body != saved:
        db.execute("INSERT OR REPLACE INTO state (id, body) VALUES (1, ?)", (body,))
        saved = body


def value(post: str) -> dict[str, Any]:
    return {
        "post": post,
        "likes": crdt.likes(state, post),
        "tags": sorted(crdt.tags(state, post)),
    }


def failed(exc: Exception, what: str) -> JSONResponse:
    log.exception("%s failed", what)
    return JSONResponse({"error": f"{what} failed: {exc!r}"}, status_code=500)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "replica": REPLICA})


async def like(request: Request) -> JSONResponse:
    post = request.path_params["post"]
    delta = (await request.json()).get("delta")
    if delta not in (1, -1):
        return JSONResponse({"error": 'expected {"delta": 1} or {"delta": -1}'}, 400)
    try:
        change(lambda s: crdt.add_likes(s, REPLICA, post, delta))
        return JSONResponse(value(post), status_code=201)
    except Exception as exc:
        return failed(exc, f"{'like' if delta > 0 else 'unlike'} {post}")


async def add_tag(request: Request) -> JSONResponse:
    post = request.path_params["post"]
    tag = (await request.json()).get("tag")
    if not isinstance(tag, str) or not tag:
        return JSONResponse({"error": 'expected {"tag": "<name>"}'}, status_code=400)
    try:
        change(lambda s: crdt.add_tag(s, REPLICA, post, tag))
        return JSONResponse(value(post), status_code=201)
    except Exception as exc:
        return failed(exc, f"add tag {tag!r} to {post}")


async def remove_tag(request: Request) -> JSONResponse:
    post, tag = request.path_params["post"], request.path_params["tag"]
    try:
        change(lambda s: crdt.remove_tag(s, REPLICA, post, tag))
        return JSONResponse(value(post))
    except Exception as exc:
        return failed(exc, f"remove tag {tag!r} from {post}")


async def read(request: Request) -> JSONResponse:
    post = request.path_params["post"]
    try:
        return JSONResponse(value(post))
    except Exception as exc:
        return failed(exc, f"read {post}")


async def merge(request: Request) -> JSONResponse:
    try:
        incoming = (await request.json())["state"]
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'expected {"from": ..., "state": ...}'}, status_code=400)
    try:
        change(lambda s: crdt.merge(s, incoming))
        return JSONResponse({"merged": True})
    except Exception as exc:
        return failed(exc, "merge")


async def show_state(request: Request) -> JSONResponse:
    return JSONResponse(state)


async def deliver(http: httpx.AsyncClient, peer: str, url: str, body: str) -> None:
    try:
        response = await http.post(
            f"{url}/merge", content=body, headers={"content-type": "application/json"}
        )
        if response.status_code == 200:
            acknowledged[peer] = body
    except httpx.HTTPError:
        pass  # the next round sends it again
    finally:
        in_flight[peer] -= 1


async def anti_entropy() -> None:
    """Every INTERVAL, send the whole state to every peer that has not acknowledged it yet,
    without waiting for the answers: a delivery held up by the network overlaps newer ones,
    and may arrive after them."""
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=PUSH_TIMEOUT, trust_env=False) as http:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                body = json.dumps({"from": REPLICA, "state": state})
            except (TypeError, ValueError):
                log.exception("the state cannot be sent: JSON cannot carry it")
                continue
            for peer, url in PEERS.items():
                if body == acknowledged[peer] or in_flight[peer] >= MAX_IN_FLIGHT:
                    continue
                in_flight[peer] += 1
                task = asyncio.create_task(deliver(http, peer, url, body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(anti_entropy())
    yield
    task.cancel()


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/posts/{post}/likes", like, methods=["POST"]),
            Route("/posts/{post}/tags", add_tag, methods=["POST"]),
            Route("/posts/{post}/tags/{tag}", remove_tag, methods=["DELETE"]),
            Route("/posts/{post}", read),
            Route("/merge", merge, methods=["POST"]),
            Route("/state", show_state),
        ],
        lifespan=lifespan,
    )
)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
