"""payments: takes a charge from a client and records it in the ledger.

POST /charges with a JSON body {"order": "c-17", "amount": 500} (amount in cents) and an
`Idempotency-Key` header; answers 201 {"charge_id": ..., "order": ..., "amount": ...}, where
charge_id is the ledger's entry id. See the lab's README for the whole protocol.
"""

import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LEDGER_URL = os.environ["LEDGER_URL"]


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def create_charge(request: Request) -> JSONResponse:
    body = await request.json()
    order, amount = body.get("order"), body.get("amount")
    if not isinstance(order, str) or not isinstance(amount, int) or amount <= 0:
        return JSONResponse(
            {"error": 'expected {"order": "<id>", "amount": <cents, above 0>}'}, status_code=400
        )

    try:
        async with httpx.AsyncClient(timeout=5.0) as ledger:
            answer = await ledger.post(
                f"{LEDGER_URL}/entries", json={"order": order, "amount": amount}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        return JSONResponse({"error": f"ledger unavailable: {exc!r}"}, status_code=502)

    entry = answer.json()
    return JSONResponse(
        {"charge_id": entry["id"], "order": order, "amount": amount}, status_code=201
    )


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/charges", create_charge, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
