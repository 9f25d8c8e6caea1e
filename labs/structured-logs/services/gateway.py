"""gateway: the shop's front door. Clients place orders here; orders does the work.

POST /orders passes the request on to orders (the JSON body and the customer's Authorization
header) and answers with whatever orders answered.
"""

import os
import time

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.logs import setup

log = setup("gateway")
orders = httpx.AsyncClient(base_url=os.environ["ORDERS_URL"], timeout=5.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> Response:
    started = time.perf_counter()
    # Support keeps asking what a client really sent us: keep the headers while we look.
    log.info("POST /orders headers=%s", dict(request.headers))
    try:
        answer = await orders.post(
            "/orders",
            content=await request.body(),
            headers={
                "content-type": "application/json",
                "authorization": request.headers.get("authorization", ""),
            },
        )
    except httpx.HTTPError as exc:
        log.error("orders unavailable: %r", exc)
        return JSONResponse({"error": "orders unavailable"}, status_code=502)
    took = (time.perf_counter() - started) * 1000
    log.info("POST /orders -> %d in %.1f ms", answer.status_code, took)
    return Response(answer.content, status_code=answer.status_code, media_type="application/json")


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place_order, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
