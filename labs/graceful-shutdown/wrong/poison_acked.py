"""consumer: takes jobs from the queue and ships their orders at the warehouse.

A job's payload is an order, {"order": "o-17", "items": 3}. The queue leases a job to one
consumer at a time; the consumer acks it once the order is shipped. Several workers run side
by side, each taking one job at a time.

Wrong: a job that fails is logged and acked, to keep the queue moving: the poison job is dropped
without a trace, and so is the order whose shipment failed.
Rejected by: test_1_every_job_is_shipped_once, test_4_a_poison_job_is_dead_lettered,
  test_5_a_job_that_fails_twice_is_retried
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
        print(f"{NAME}: job {job['id']} failed, skipped: {error}", flush=True)
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
