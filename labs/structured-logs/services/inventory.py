"""inventory: holds stock for orders. Owned by the lab, not by you.

POST /reservations {"order": "o-17", "sku": "sku-2", "qty": 1} answers 201 {"reservation",
"order", "sku", "qty", "amount"} (the price in cents). The checks read what it received, and
the X-Request-Id each request carried, on GET /_chaoslab/received (harness.service_kit), and
can make it fail.

It logs the way the platform team asks every service to: one JSON object per line.
"""

import json
import os
import time
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

PRICES = {"sku-1": 1250, "sku-2": 499, "sku-3": 8900, "sku-4": 2300}
reservations: list[dict[str, object]] = []


def log(request: Request, status: int, started: float, message: str) -> None:
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info" if status < 500 else "error",
        "service": "inventory",
        "message": message,
        "request_id": request.headers.get("x-request-id"),
        "route": request.url.path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    print(json.dumps(line), flush=True)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def reserve(request: Request) -> JSONResponse:
    started = time.perf_counter()
    body = await request.json()
    if body.get("sku") not in PRICES:
        log(request, 404, started, f"no such sku for order {body.get('order')}")
        return JSONResponse({"error": "no such sku"}, status_code=404)
    reservation = {
        "reservation": len(reservations) + 1,
        "order": body["order"],
        "sku": body["sku"],
        "qty": body["qty"],
        "amount": PRICES[body["sku"]] * int(body["qty"]),
    }
    reservations.append(reservation)
    log(request, 201, started, f"reserved {body['qty']} x {body['sku']} for {body['order']}")
    return JSONResponse(reservation, status_code=201)


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/reservations", reserve, methods=["POST"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
