"""consumer: takes jobs from the queue and ships their orders at the warehouse.

A job's payload is an order, {"order": "o-17", "items": 3}. The queue leases a job to one
consumer at a time; the consumer acks it once the order is shipped. Several workers run side
by side, each taking one job at a time.

Also correct: one loop leases jobs and starts a task for each, at most WORKERS at once (a
semaphore); on SIGTERM the loop stops and the tasks in flight are awaited.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

NAME = os.environ["SERVICE_NAME"]
MAX_ATTEMPTS = int(os.environ["MAX_ATTEMPTS"])
WORKERS = 4

queue = httpx.AsyncClient(base_url=os.environ["QUEUE_URL"], timeout=5.0)
warehouse = httpx.AsyncClient(base_url=os.environ["WAREHOUSE_URL"], timeout=5.0)
stopping = asyncio.Event()


async def ship(job: dict) -> None:
    order = job["payload"]
    shipped = await warehouse.post(
        "/ship", json={"job": job["id"], "order": order["order"], "items": int(order["items"])}
    )
    shipped.raise_for_status()


async def handle(job: dict) -> None:
    settle = {"id": job["id"], "lease": job["lease"]}
    try:
        await ship(job)
    except Exception as exc:  # a bad payload or a failed call: this job, not the worker
        error = f"{type(exc).__name__}: {exc}"
        last = job["attempt"] >= MAX_ATTEMPTS
        await queue.post("/dead" if last else "/nack", json={**settle, "error": error})
        return
    await queue.post("/ack", json=settle)


async def dispatch(in_flight: set[asyncio.Task[None]]) -> None:
    slots = asyncio.Semaphore(WORKERS)
    while not stopping.is_set():
        await slots.acquire()
        leased = await queue.post("/lease", json={"consumer": NAME, "wait": 0.5})
        if leased.status_code == 204:
            slots.release()
            continue
        task = asyncio.create_task(handle(leased.json()))
        in_flight.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            in_flight.discard(done)
            slots.release()

        task.add_done_callback(finished)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    in_flight: set[asyncio.Task[None]] = set()
    dispatcher = asyncio.create_task(dispatch(in_flight))
    yield
    stopping.set()
    await dispatcher  # its lease in hand, if any, became a task
    await asyncio.gather(*in_flight)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/health", health)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
