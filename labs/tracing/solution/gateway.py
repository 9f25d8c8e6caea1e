"""gateway: the shop's front door. Clients place orders here; orders does the work.

POST /orders passes the order on to orders and answers with whatever orders answered (502 when
orders cannot be reached).
"""

import os

import httpx
import uvicorn
from services.tracing import answered, call, server_span, setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

tracer = setup("gateway")
orders = httpx.AsyncClient(base_url=os.environ["ORDERS_URL"], timeout=5.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> Response:
    with server_span(tracer, request, "/orders") as span:
        try:
            answer = await call(
                tracer,
                orders,
                "POST",
                "/orders",
                content=await request.body(),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError:
            return JSONResponse({"error": "orders unavailable"}, status_code=answered(span, 502))
        status = answered(span, answer.status_code)
        return Response(answer.content, status, media_type="application/json")


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place_order, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
