"""ledger: the book of record. It writes down every entry it is sent, and shows them all.

Owned by the lab, not by you: it trusts payments completely, so every entry it receives is money
taken from a customer. The checks read GET /entries to see what was really charged, and can
hold back its answers (harness.service_kit.with_chaos): the entry is written, payments does not
know yet.
"""

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

entries: list[dict[str, object]] = []


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def add_entry(request: Request) -> JSONResponse:
    body = await request.json()
    entry = {"id": len(entries) + 1, "order": body["order"], "amount": body["amount"]}
    entries.append(entry)
    return JSONResponse(entry, status_code=201)


async def list_entries(request: Request) -> JSONResponse:
    return JSONResponse(entries)


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/entries", add_entry, methods=["POST"]),
            Route("/entries", list_entries, methods=["GET"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
