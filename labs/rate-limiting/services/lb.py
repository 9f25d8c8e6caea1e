"""The load balancer: sends each request to the next API replica in turn (round robin).

Owned by the lab, not by you. It forwards the request as it came (method, path, query, headers,
body) and adds `X-Upstream: api-1` (or `api-2`) to the answer, so you and the checks can see
which replica served it. A replica that cannot be reached gives 502.
"""

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.service_kit import with_chaos

# Each upstream is a replica's name; its address comes from the naming rule (API_1_URL).
UPSTREAMS = [
    (name, os.environ[f"{name.upper().replace('-', '_')}_URL"])
    for name in os.environ["UPSTREAMS"].split()
]
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
}

turn = itertools.cycle(UPSTREAMS)
upstream = httpx.AsyncClient(timeout=30.0, trust_env=False)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "upstreams": [name for name, _ in UPSTREAMS]})


async def forward(request: Request) -> Response:
    name, base = next(turn)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    try:
        answer = await upstream.request(
            request.method,
            f"{base}{request.url.path}",
            params=request.url.query,
            headers=headers,
            content=await request.body(),
        )
    except httpx.HTTPError as exc:
        return JSONResponse(
            {"error": f"{name} unreachable: {type(exc).__name__}"},
            status_code=502,
            headers={"X-Upstream": name},
        )
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
    kept["X-Upstream"] = name
    return Response(answer.content, status_code=answer.status_code, headers=kept)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await upstream.aclose()


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE"]),
        ],
        lifespan=lifespan,
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
