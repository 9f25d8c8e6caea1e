"""consumer: takes jobs from the queue and ships their orders at the warehouse.

A job's payload is an order, {"order": "o-17", "items": 3}. The queue leases a job to one
consumer at a time; the consumer acks it once the order is shipped. Several workers run side
by side, each taking one job at a time.

Shutting down (SIGTERM: uvicorn then runs the lifespan's exit): the workers stop taking jobs,
finish the one each holds, and return; then the process exits 0. A job that fails is given
back at once (nack) to be tried again, and dead-lettered at its last attempt.

Wrong: the last attempt is never made. A job leased for the 3rd time is dead-lettered before
it is tried, so a job that failed twice for a passing reason is given up on while one more try
would have shipped it (the poison job looks right: it fails whatever is tried).
Rejected by: test_1_every_job_is_shipped_once, test_5_a_job_that_fails_twice_is_retried
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
    if job["attempt"] >= MAX_ATTEMPTS:  # its attempts are used up: into the dead-letter queue
        error = f"gave up after {job['attempt'] - 1} failed attempts"
        await queue.post("/dead", json={**settle, "error": error})
        return
    try:
        await ship(job)
    except Exception as exc:  # a bad payload or a failed call: this job, not the worker
        await queue.post("/nack", json={**settle, "error": f"{type(exc).__name__}: {exc}"})
        return
    await queue.post("/ack", json=settle)


async def work() -> None:
    while not stopping.is_set():
        leased = await queue.post("/lease", json={"consumer": NAME, "wait": 0.5})
        if leased.status_code == 204:
            continue  # nothing to do yet
        await handle(leased.json())  # a job leased is finished, even while stopping


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    workers = [asyncio.create_task(work()) for _ in range(WORKERS)]
    yield
    stopping.set()  # take no new job
    await asyncio.gather(*workers)  # and finish the ones in hand


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/health", health)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
