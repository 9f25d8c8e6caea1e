"""payments: charges cards. Owned by the lab, not by you.

POST /charges {"order": "o-17", "amount": 499, "card": "4929..."} answers 201 {"charge",
"order", "amount", "card"} (the card's last four digits only). The checks read what it
received, and the X-Request-Id each request carried, on GET /_chaoslab/received
(harness.service_kit), and can make it fail.

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

charges: list[dict[str, object]] = []


def log(request: Request, status: int, started: float, message: str) -> None:
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info" if status < 500 else "error",
        "service": "payments",
        "message": message,
        "request_id": request.headers.get("x-request-id"),
        "route": request.url.path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    print(json.dumps(line), flush=True)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def charge(request: Request) -> JSONResponse:
    started = time.perf_counter()
    body = await request.json()
    card = str(body.get("card", ""))
    charged = {
        "charge": len(charges) + 1,
        "order": body["order"],
        "amount": body["amount"],
        "card": f"****{card[-4:]}",  # never the whole number, not even in a log
    }
    charges.append(charged)
    log(request, 201, started, f"charged {body['amount']} to {charged['card']}")
    return JSONResponse(charged, status_code=201)


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/charges", charge, methods=["POST"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
