"""cache: prices, kept close to orders. Owned by the lab, not by you.

GET /prices/{sku} answers 200 {"sku", "cents"}, or 404 for an unknown sku. The checks read what
it received (with the traceparent header of each request) on GET /_chaoslab/received.
"""

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos
from services.platform import traced

PRICES = {"sku-1": 1250, "sku-2": 499, "sku-3": 8900, "sku-4": 2300}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def price(request: Request) -> JSONResponse:
    sku = request.path_params["sku"]
    if sku not in PRICES:
        return JSONResponse({"error": "no such sku"}, status_code=404)
    return JSONResponse({"sku": sku, "cents": PRICES[sku]})


app = with_chaos(
    traced(
        Starlette(
            routes=[
                Route("/health", health),
                Route("/prices/{sku}", price),
            ]
        ),
        "cache",
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
