"""payments: charges a card. Owned by another team (and by the harness).

    POST /charge {"user", "amount"} -> 200 {"charge_id"}

The checks make it slow (a share of charges delayed) or failing (HTTP 503) for a while, from
outside, through harness.service_kit.with_chaos.
"""

import os
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def charge(request: Request) -> JSONResponse:
    body = await request.json()
    if not isinstance(body.get("amount"), int | float) or body["amount"] <= 0:
        return JSONResponse({"error": "amount must be above zero"}, status_code=400)
    return JSONResponse({"charge_id": uuid.uuid4().hex})


app = with_chaos(
    Starlette(routes=[Route("/health", health), Route("/charge", charge, methods=["POST"])])
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
