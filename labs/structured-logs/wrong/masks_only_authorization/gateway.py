"""gateway: the shop's front door. Clients place orders here; orders does the work.

POST /orders passes the request on to orders (the JSON body and the customer's Authorization
header) and answers with whatever orders answered.

Wrong: the gateway still logs every header the client sent, with only the Authorization header
masked. A browser's client sends its session cookie too, and the cookie is a credential as
much as the bearer token: whoever reads the logs can be that customer.
Rejected by: test_3_no_line_leaks_a_secret
"""

import os

import httpx
import uvicorn
from services.logs import RequestIds, forward_id, setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = setup("gateway")
orders = httpx.AsyncClient(base_url=os.environ["ORDERS_URL"], timeout=5.0)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def place_order(request: Request) -> Response:
    # What the client sent, for support; the Authorization header is a credential: masked.
    headers = {**request.headers, "authorization": "Bearer ***"}
    log.info("order received", extra={"headers": headers})
    try:
        answer = await orders.post(
            "/orders",
            content=await request.body(),
            headers={
                "content-type": "application/json",
                "authorization": request.headers.get("authorization", ""),
                **forward_id(),
            },
        )
    except httpx.HTTPError as exc:
        log.error("orders unavailable: %s", type(exc).__name__)
        return JSONResponse({"error": "orders unavailable"}, status_code=502)
    return Response(answer.content, status_code=answer.status_code, media_type="application/json")


app = RequestIds(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/orders", place_order, methods=["POST"]),
        ]
    ),
    log,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
