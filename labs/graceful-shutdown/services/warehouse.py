"""warehouse: ships orders. Owned by the lab, not by you.

POST /ship {"job", "order", "items"} ships the order: the parcel leaves at once, and the answer
(201 {"shipment"}) comes SHIP_SECONDS later. A caller that hangs up meanwhile does not unship
it. The order o-flaky is the exception: the first two times, the warehouse answers 503 and
ships nothing (a transient failure; asking again works). Every shipment is written down
(GET /shipments, for the checks).
"""

import asyncio
import os
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SHIP_SECONDS = float(os.environ.get("SHIP_SECONDS", "0.6"))
FLAKY = "o-flaky"
REFUSALS = 2  # times o-flaky is refused before it ships: a job's last attempt must be tried

shipments: list[dict[str, Any]] = []
shipping: set[str] = set()  # jobs whose parcel left and whose answer is not sent yet
refused: list[str] = []


async def ship(request: Request) -> JSONResponse:
    body = await request.json()
    if body.get("order") == FLAKY and refused.count(FLAKY) < REFUSALS:
        refused.append(FLAKY)
        return JSONResponse({"error": "the loading dock is busy: ask again"}, status_code=503)
    shipment = {"shipment": len(shipments) + 1, "at": time.time(), **body}
    shipments.append(shipment)
    shipping.add(str(body.get("job")))
    try:
        await asyncio.sleep(SHIP_SECONDS)
    finally:
        shipping.discard(str(body.get("job")))
    return JSONResponse({"shipment": shipment["shipment"]}, status_code=201)


async def list_shipments(request: Request) -> JSONResponse:
    return JSONResponse(shipments)


async def in_progress(request: Request) -> JSONResponse:
    """The jobs being shipped now (for the checks: when to stop a consumer)."""
    return JSONResponse(sorted(shipping))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/ship", ship, methods=["POST"]),
        Route("/shipments", list_shipments),
        Route("/shipping", in_progress),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
