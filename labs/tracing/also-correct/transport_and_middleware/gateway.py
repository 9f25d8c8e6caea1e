"""gateway: the shop's front door. Clients place orders here; orders does the work.

POST /orders passes the order on to orders and answers with whatever orders answered (502 when
orders cannot be reached).
"""

import os

import httpx
import uvicorn
from services.tracing import TracedApp, setup, traced_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

tracer = setup("gateway")
orders = traced_client(tracer, os.environ["ORDERS_URL"], timeout=5.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> Response:
    try:
        answer = await orders.post(
            "/orders",
            content=await request.body(),
            headers={"content-type": "application/json"},
        )
    except httpx.HTTPError:
        return JSONResponse({"error": "orders unavailable"}, status_code=502)
    return Response(answer.content, answer.status_code, media_type="application/json")


app = TracedApp(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/orders", place_order, methods=["POST"]),
        ]
    ),
    tracer,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
