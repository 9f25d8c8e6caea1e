"""payments: charges a card and books the charge in the ledger.

POST /charges {"order": "o-17", "card": "4111111111111111", "amount": 12} answers 201
{"charge", "order"}; 502 when the ledger did not book it.
"""

import os

from services import tls
from services.serving import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ledger = tls.client(os.environ["LEDGER_URL"], peer="ledger")


async def charge(request: Request) -> JSONResponse:
    if not tls.caller_allowed(request):
        return JSONResponse({"error": "you may not call payments"}, status_code=403)
    order = await request.json()
    entry = {"order": order["order"], "amount": order["amount"], "card": "..." + order["card"][-4:]}
    try:
        booked = await ledger.post("/entries", json=entry)
    except Exception as exc:  # any failure to reach the ledger is a 502
        return JSONResponse({"error": f"ledger unreachable: {exc!r}"}, status_code=502)
    if booked.status_code != 201:
        return JSONResponse({"error": f"ledger said {booked.status_code}"}, status_code=502)
    reply = {"charge": booked.json()["entry"], "order": order["order"]}
    return JSONResponse(reply, status_code=201)


app = Starlette(routes=[Route("/charges", charge, methods=["POST"])])

if __name__ == "__main__":
    serve(app, tls.server_context())
