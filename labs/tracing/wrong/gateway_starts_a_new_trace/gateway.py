"""gateway: the shop's front door. Clients place orders here; orders does the work.

POST /orders passes the order on to orders and answers with whatever orders answered (502 when
orders cannot be reached).

Wrong: the gateway, the edge, starts a new trace for every request instead of continuing the
one its client sent: the client's trace has no span, and requests it did not sample are
recorded.
Rejected by: test_1_every_request_is_one_trace, test_4_sampling_follows_the_caller
"""

import os

import httpx
import uvicorn
from opentelemetry.trace import SpanKind
from services.tracing import answered, call, setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

tracer = setup("gateway")
orders = httpx.AsyncClient(base_url=os.environ["ORDERS_URL"], timeout=5.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> Response:
    # The gateway is the edge: every trace starts here.
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", "POST")
        span.set_attribute("http.route", "/orders")
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
