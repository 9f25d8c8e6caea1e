"""gateway: the shop's front door. Clients place orders here; orders does the work.

POST /orders passes the request on to orders (the JSON body and the customer's Authorization
header) and answers with whatever orders answered. The gateway only passes requests on, so it
passes the client's X-Request-Id on too, and logs under it.

Wrong: the gateway makes no id when a request comes without one; orders makes one then, so the
gateway's lines of that request carry none, and its answer names no id.
Rejected by: test_1_every_request_can_be_followed_by_its_id
"""

import os
import time

import httpx
import uvicorn
from services.logs import HEADER, request_id, setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = setup("gateway")
orders = httpx.AsyncClient(base_url=os.environ["ORDERS_URL"], timeout=5.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> Response:
    started = time.perf_counter()
    client_id = request.headers.get(HEADER)  # the client's, when it sent one
    token = request_id.set(client_id)
    passed_on = {HEADER: client_id} if client_id else {}
    response: Response
    try:
        log.info("order received", extra={"user_agent": request.headers.get("user-agent")})
        try:
            answer = await orders.post(
                "/orders",
                content=await request.body(),
                headers={
                    "content-type": "application/json",
                    "authorization": request.headers.get("authorization", ""),
                    **passed_on,
                },
            )
        except httpx.HTTPError as exc:
            log.error("orders unavailable: %s", type(exc).__name__)
            response = JSONResponse({"error": "orders unavailable"}, status_code=502)
        else:
            response = Response(
                answer.content, status_code=answer.status_code, media_type="application/json"
            )
        response.headers.update(passed_on)
        log.info(
            "POST /orders answered %d",
            response.status_code,
            extra={
                "route": "/orders",
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response
    finally:
        request_id.reset(token)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", place_order, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
