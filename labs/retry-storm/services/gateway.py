"""The quote gateway: checkout asks it for the price of an item, and it asks pricing.

    POST /quote  {"call_id": "q-17", "item": "kettle"}  ->  200 {"call_id", "item", "price"}

The body goes to pricing unchanged: pricing's logs are searched by call id.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# A checkout without a price is a lost sale. Pricing is sometimes slow and sometimes briefly
# unavailable: wait for its answer, however long it takes, and ask again until it gives one.
pricing = httpx.AsyncClient(base_url=os.environ["PRICING_URL"], timeout=None)


async def quote(request: Request) -> JSONResponse:
    body = await request.json()
    while True:
        try:
            response = await pricing.post("/price", json=body)
        except httpx.TransportError:
            continue
        if response.status_code < 500:
            return JSONResponse(response.json(), status_code=response.status_code)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await pricing.aclose()


app = Starlette(
    routes=[Route("/health", health), Route("/quote", quote, methods=["POST"])],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
