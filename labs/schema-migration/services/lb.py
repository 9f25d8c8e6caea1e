"""lb: the load balancer in front of the accounts replicas. Owned by the lab, not by you.

Each request goes to the next replica in turn; a replica that refuses the connection, or closes
it before answering (it is shutting down or restarting), is skipped for the other, as a load
balancer's health check and retry would. Every request is
written down with its answer (GET /_lb/requests, for the checks): the record the checks judge.
"""

import itertools
import os
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REPLICAS = {
    name: httpx.AsyncClient(
        base_url=os.environ[f"{name.upper().replace('-', '_')}_URL"], timeout=5.0
    )
    for name in ("accounts-1", "accounts-2")
}
turns = itertools.cycle(list(REPLICAS))
record: list[dict[str, Any]] = []


async def forward(request: Request) -> Response:
    body = await request.body()
    began = time.time()
    first = next(turns)
    order = [first, *(r for r in REPLICAS if r != first)]
    failure = ""
    for replica in order:
        try:
            answer = await REPLICAS[replica].request(
                request.method,
                request.url.path,
                content=body,
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        except httpx.TransportError as exc:
            # Refused, or closed before any answer (a replica shutting down closes its idle
            # connections): the request was not served there; the other replica serves it.
            failure = f"{replica}: {exc!r}"
            continue
        record.append(
            {"method": request.method, "path": request.url.path, "replica": replica,
             "status": answer.status_code, "began": began, "ended": time.time()}
        )  # fmt: skip
        served = {"x-served-by": replica}
        return Response(answer.content, answer.status_code, served, "application/json")
    record.append(
        {"method": request.method, "path": request.url.path, "replica": None, "status": 503,
         "began": began, "ended": time.time()}
    )  # fmt: skip
    return JSONResponse({"error": f"no replica answered (last: {failure})"}, status_code=503)


async def requests(request: Request) -> JSONResponse:
    return JSONResponse(record)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/_lb/requests", requests),
        Route("/{path:path}", forward, methods=["GET", "PUT", "POST", "DELETE"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
