"""payments: takes a charge from a client and records it in the ledger, once per idempotency key.

Every key is remembered with a fingerprint of its body: while its request is in flight, as a
future its duplicates await; after, with the answer it got, so a retry gets it again.

Wrong: the keys live only in memory, so a restart forgets them and a retry after it charges a
second time.
Rejected by: test_5_a_retry_after_a_crash_charges_nothing_new,
    test_6_a_crash_in_the_middle_of_a_charge_charges_at_most_once
"""

import asyncio
import hashlib
import json
import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LEDGER_URL = os.environ["LEDGER_URL"]
WAIT_FOR_FIRST = 2.0  # seconds a duplicate waits for the request in flight

# key -> (fingerprint, status, answer) for every charge answered
answers: dict[str, tuple[str, int, dict[str, object]]] = {}
# key -> (fingerprint, the future answer) for every request still talking to the ledger
in_flight: dict[str, tuple[str, asyncio.Future[tuple[int, dict[str, object]]]]] = {}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def different_body() -> JSONResponse:
    return JSONResponse(
        {"error": "this Idempotency-Key was used with a different request"}, status_code=422
    )


async def create_charge(request: Request) -> JSONResponse:
    key = request.headers.get("Idempotency-Key")
    if not key:
        return JSONResponse({"error": "send an Idempotency-Key header"}, status_code=400)
    body = await request.json()
    order, amount = body.get("order"), body.get("amount")
    if not isinstance(order, str) or not isinstance(amount, int) or amount <= 0:
        return JSONResponse(
            {"error": 'expected {"order": "<id>", "amount": <cents, above 0>}'}, status_code=400
        )
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    if key in answers:
        first_fingerprint, status, answer = answers[key]
        if first_fingerprint != fingerprint:
            return different_body()
        return JSONResponse(answer, status_code=status, headers={"Idempotent-Replayed": "true"})

    if key in in_flight:
        first_fingerprint, pending = in_flight[key]
        if first_fingerprint != fingerprint:
            return different_body()
        try:
            status, answer = await asyncio.wait_for(asyncio.shield(pending), WAIT_FOR_FIRST)
        except TimeoutError:
            return JSONResponse(
                {"error": "a request with this Idempotency-Key is in progress; retry later"},
                status_code=409,
            )
        return JSONResponse(answer, status_code=status, headers={"Idempotent-Replayed": "true"})

    pending = asyncio.get_running_loop().create_future()
    in_flight[key] = (fingerprint, pending)
    try:
        status, answer = await charge(order, amount)
        if status == 201:
            answers[key] = (fingerprint, status, answer)
        pending.set_result((status, answer))
    finally:
        del in_flight[key]
    return JSONResponse(answer, status_code=status)


async def charge(order: str, amount: int) -> tuple[int, dict[str, object]]:
    try:
        async with httpx.AsyncClient(timeout=5.0) as ledger:
            answer = await ledger.post(
                f"{LEDGER_URL}/entries", json={"order": order, "amount": amount}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        return 502, {"error": f"ledger unavailable: {exc!r}"}
    entry = answer.json()
    return 201, {"charge_id": entry["id"], "order": order, "amount": amount}


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/charges", create_charge, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
