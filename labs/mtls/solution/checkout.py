"""checkout: takes an order from the web tier and has payments charge the card.

POST /checkout {"order": "o-17", "card": "4111111111111111", "amount": 12} answers 201
{"order", "charge", "card": "...1111"}; 502 when payments did not charge it.
"""

import os

from services import tls
from services.serving import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

payments = tls.client(os.environ["PAYMENTS_URL"], peer="payments")


async def checkout(request: Request) -> JSONResponse:
    if not tls.caller_allowed(request):
        return JSONResponse({"error": "you may not call checkout"}, status_code=403)
    order = await request.json()
    try:
        charged = await payments.post("/charges", json=order)
    except Exception as exc:  # any failure to reach payments is a 502
        return JSONResponse({"error": f"payments unreachable: {exc!r}"}, status_code=502)
    if charged.status_code != 201:
        return JSONResponse({"error": f"payments said {charged.status_code}"}, status_code=502)
    card = "..." + order["card"][-4:]
    reply = {"order": order["order"], "charge": charged.json()["charge"], "card": card}
    return JSONResponse(reply, status_code=201)


app = Starlette(routes=[Route("/checkout", checkout, methods=["POST"])])

if __name__ == "__main__":
    serve(app, tls.server_context())
