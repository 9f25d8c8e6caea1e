"""consumer: takes jobs from the queue and ships their orders at the warehouse.

A job's payload is an order, {"order": "o-17", "items": 3}. The queue leases a job to one
consumer at a time; the consumer acks it once the order is shipped. Several workers run side
by side, each taking one job at a time.
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
WORKERS = 4

queue = httpx.AsyncClient(base_url=os.environ["QUEUE_URL"], timeout=5.0)
warehouse = httpx.AsyncClient(base_url=os.environ["WAREHOUSE_URL"], timeout=5.0)


async def ship(job: dict) -> None:
    order = job["payload"]
    shipped = await warehouse.post(
        "/ship", json={"job": job["id"], "order": order["order"], "items": int(order["items"])}
    )
    shipped.raise_for_status()


async def work() -> None:
    while True:
        leased = await queue.post("/lease", json={"consumer": NAME, "wait": 0.5})
        if leased.status_code == 204:
            continue  # nothing to do yet
        job = leased.json()
        await ship(job)
        await queue.post("/ack", json={"id": job["id"], "lease": job["lease"]})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    workers = [asyncio.create_task(work()) for _ in range(WORKERS)]
    yield
    for worker in workers:
        worker.cancel()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/health", health)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
