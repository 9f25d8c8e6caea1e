"""queue: a job queue with leases. Owned by the lab, not by you.

POST /jobs {"id", "payload"}            enqueue a job (the checks do)
POST /lease {"consumer", "wait": 0.5}   the oldest ready job, leased to you for LEASE_SECONDS:
                                        200 {"id", "payload", "attempt", "lease", "lease_seconds"}
                                        (attempt 1 the first time it is leased); 204 when none
                                        became ready within `wait` seconds (at most 1)
POST /ack  {"id", "lease"}              done: the job leaves the queue
POST /nack {"id", "lease", "error"}     not done: ready again at once, for anyone
POST /dead {"id", "lease", "error"}     never will be: into the dead-letter queue, with its error
A lease that is neither acked, nacked nor dead-lettered in time expires: the job is ready again,
for anyone, LEASE_SECONDS late. An ack, nack or dead-letter of a lease that is not the job's
current one is refused with 409. Every event is written down (GET /events, for the checks).
"""

import asyncio
import os
import time
import uuid
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LEASE_SECONDS = float(os.environ.get("LEASE_SECONDS", "2.0"))


@dataclass
class Job:
    id: str
    payload: Any
    state: str = "ready"  # ready, leased, done, dead
    attempt: int = 0
    lease: str = ""
    consumer: str = ""
    until: float = 0.0


jobs: dict[str, Job] = {}
ready: deque[str] = deque()
events: list[dict[str, Any]] = []
changed = asyncio.Condition()


def event(kind: str, job: Job, **more: Any) -> None:
    events.append(
        {"at": time.time(), "kind": kind, "id": job.id, "consumer": job.consumer,
         "attempt": job.attempt, **more}
    )  # fmt: skip


async def enqueue(request: Request) -> JSONResponse:
    body = await request.json()
    job = Job(str(body["id"]), body.get("payload"))
    jobs[job.id] = job
    ready.append(job.id)
    event("enqueued", job)
    async with changed:
        changed.notify_all()
    return JSONResponse({"id": job.id}, status_code=201)


async def lease(request: Request) -> Response:
    body = await request.json()
    wait = min(float(body.get("wait", 0)), 1.0)
    deadline = time.monotonic() + wait
    async with changed:
        while not ready:
            left = deadline - time.monotonic()
            if left <= 0:
                return Response(status_code=204)
            try:
                await asyncio.wait_for(changed.wait(), left)
            except TimeoutError:
                return Response(status_code=204)
        job = jobs[ready.popleft()]
    job.state, job.attempt, job.lease = "leased", job.attempt + 1, uuid.uuid4().hex
    job.consumer, job.until = str(body.get("consumer", "?")), time.monotonic() + LEASE_SECONDS
    event("leased", job)
    reply = {"id": job.id, "payload": job.payload, "attempt": job.attempt, "lease": job.lease,
             "lease_seconds": LEASE_SECONDS}  # fmt: skip
    return JSONResponse(reply)


async def settle(request: Request, kind: str) -> JSONResponse:
    body = await request.json()
    job = jobs.get(str(body.get("id")))
    if job is None or job.state != "leased" or job.lease != body.get("lease"):
        if job is not None:
            event(f"{kind} refused", job, by_lease=body.get("lease"))
        return JSONResponse({"error": "not your lease (expired, or settled)"}, status_code=409)
    error = str(body.get("error", ""))
    if kind == "acked":
        job.state = "done"
    elif kind == "dead":
        job.state = "dead"
    else:
        job.state = "ready"
        ready.appendleft(job.id)
        async with changed:
            changed.notify_all()
    event(kind, job, error=error)
    return JSONResponse({"id": job.id, "state": job.state})


async def ack(request: Request) -> JSONResponse:
    return await settle(request, "acked")


async def nack(request: Request) -> JSONResponse:
    return await settle(request, "nacked")


async def dead(request: Request) -> JSONResponse:
    return await settle(request, "dead")


async def expire() -> None:
    while True:
        await asyncio.sleep(0.05)
        now = time.monotonic()
        for job in jobs.values():
            if job.state == "leased" and job.until <= now:
                event("expired", job)
                job.state = "ready"
                ready.appendleft(job.id)
                async with changed:
                    changed.notify_all()


async def list_events(request: Request) -> JSONResponse:
    return JSONResponse(events)


async def held(request: Request) -> JSONResponse:
    """The jobs leased now, by consumer (for the checks: whom to stop when)."""
    now: dict[str, list[str]] = {}
    for job in jobs.values():
        if job.state == "leased":
            now.setdefault(job.consumer, []).append(job.id)
    return JSONResponse(now)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@asynccontextmanager
async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
    expiring = asyncio.create_task(expire())
    yield
    expiring.cancel()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/jobs", enqueue, methods=["POST"]),
        Route("/lease", lease, methods=["POST"]),
        Route("/ack", ack, methods=["POST"]),
        Route("/nack", nack, methods=["POST"]),
        Route("/dead", dead, methods=["POST"]),
        Route("/events", list_events),
        Route("/held", held),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
