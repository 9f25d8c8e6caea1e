"""inventory: holds stock for orders. Owned by the lab, not by you.

POST /reservations {"order": "o-17", "sku": "sku-2", "qty": 1} answers 201 {"reservation",
"order", "sku", "qty"}. The checks read what it received (with the traceparent header of each
request) on GET /_chaoslab/received (harness.service_kit), and can make it fail.
"""

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos
from services.platform import traced

reservations: list[dict[str, object]] = []


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def reserve(request: Request) -> JSONResponse:
    body = await request.json()
    reservation = {"reservation": len(reservations) + 1, **body}
    reservations.append(reservation)
    return JSONResponse(reservation, status_code=201)


app = with_chaos(
    traced(
        Starlette(
            routes=[
                Route("/health", health),
                Route("/reservations", reserve, methods=["POST"]),
            ]
        ),
        "inventory",
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
