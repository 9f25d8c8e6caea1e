"""The load balancer: sends each request to the next API replica in turn (round robin).

Owned by the lab, not by you. It forwards the request as it came (method, path, query, headers,
body) and adds `X-Upstream: api-1` (or `api-2`, `api-3`) to the answer, so you and the checks
can see which replica served it. A replica that cannot be reached gives 502.

The replicas in the rotation change as in production: a replica is drained for a deploy, or one
is added when the load grows. The checks change the rotation on a route of their own, and read
the lb's record of every answer it passed on (who asked, which replica answered, the status):

    PUT /_lb/serving   {"upstreams": ["api-1", "api-3"]}   the replicas in the rotation from now
    GET /_lb/answers   [{"client", "upstream", "serving", "status", "retry_after",
                         "received", "answered"}, ...]     times from time.time()
"""

import os
import time
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
UPSTREAMS = {
    name: os.environ[f"{name.upper().replace('-', '_')}_URL"]
    for name in os.environ["UPSTREAMS"].split()
}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
}

serving = os.environ.get("SERVING", " ".join(UPSTREAMS)).split()
turns = 0
answers: list[dict[str, object]] = []
upstream = httpx.AsyncClient(timeout=30.0, trust_env=False)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "upstreams": serving})


async def forward(request: Request) -> Response:
    global turns
    received = time.time()
    rotation = list(serving)
    name = rotation[turns % len(rotation)]
    turns += 1
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    try:
        answer = await upstream.request(
            request.method,
            f"{UPSTREAMS[name]}{request.url.path}",
            params=request.url.query,
            headers=headers,
            content=await request.body(),
        )
    except httpx.HTTPError as exc:
        result: Response = JSONResponse(
            {"error": f"{name} unreachable: {type(exc).__name__}"}, status_code=502
        )
    else:
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        result = Response(answer.content, status_code=answer.status_code, headers=kept)
    result.headers["X-Upstream"] = name
    answers.append(
        {
            "client": request.headers.get("x-client"),
            "upstream": name,
            "serving": len(rotation),
            "status": result.status_code,
            "retry_after": result.headers.get("retry-after"),
            "received": received,
            "answered": time.time(),
        }
    )
    return result


async def set_serving(request: Request) -> JSONResponse:
    global serving
    body = await request.json()
    names = body.get("upstreams") if isinstance(body, dict) else None
    if not isinstance(names, list) or not names or not set(names) <= set(UPSTREAMS):
        return JSONResponse(
            {"error": f'send {{"upstreams": [...]}}, a non-empty list from {list(UPSTREAMS)}'},
            status_code=400,
        )
    serving = [str(name) for name in names]
    return JSONResponse({"serving": serving})


async def recorded(request: Request) -> JSONResponse:
    return JSONResponse(answers)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await upstream.aclose()


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/_lb/serving", set_serving, methods=["PUT"]),
            Route("/_lb/answers", recorded),
            Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE"]),
        ],
        lifespan=lifespan,
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
