"""orchestrator: runs the order saga. Takes an order, then charges it, reserves its stock and
books its shipment, in that order.

POST /orders {"order": "o-17", "amount": 1200, "sku": "kettle", "qty": 1, "address": "..."}
answers 202 {"order": ...} at once; the saga then runs in the background. See the lab's README
for the whole protocol.
"""

import asyncio
import logging
import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PAYMENTS_URL = os.environ["PAYMENTS_URL"]
INVENTORY_URL = os.environ["INVENTORY_URL"]
SHIPPING_URL = os.environ["SHIPPING_URL"]

log = logging.getLogger("orchestrator")
running: set[asyncio.Task[None]] = set()  # the sagas in progress (asyncio keeps weak refs)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def create_order(request: Request) -> JSONResponse:
    order = await request.json()
    if not isinstance(order.get("order"), str):
        return JSONResponse({"error": 'expected {"order": "<id>", ...}'}, status_code=400)
    task = asyncio.create_task(run_saga(order))
    running.add(task)
    task.add_done_callback(running.discard)
    return JSONResponse({"order": order["order"]}, status_code=202)


async def run_saga(order: dict) -> None:
    saga = order["order"]
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            charged = await http.post(
                f"{PAYMENTS_URL}/charges/{saga}", json={"amount": order["amount"]}
            )
            charged.raise_for_status()
            reserved = await http.post(
                f"{INVENTORY_URL}/reservations/{saga}",
                json={"sku": order["sku"], "qty": order["qty"]},
            )
            reserved.raise_for_status()
            shipped = await http.post(
                f"{SHIPPING_URL}/shipments/{saga}", json={"address": order["address"]}
            )
            shipped.raise_for_status()
    except httpx.HTTPError as exc:
        log.error("order %s failed: %r", saga, exc)
        return
    log.info("order %s placed", saga)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/orders", create_order, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
