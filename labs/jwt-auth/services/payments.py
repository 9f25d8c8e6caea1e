"""payments: charges orders. Owned by the lab, not by you.

POST /charges {"order": "o-17", "amount": 12} with `Authorization: Bearer <token>` answers 201
{"charge", "order", "amount"}. The token must be one auth issued: signed by a key the key
service publishes, from issuer https://auth.chaoslab.test, for audience `payments`, with scope
`payments:charge`, and not expired, to the second: payments allows no leeway. Else it answers
401 (403 when only the scope is missing) and charges nothing.
"""

import os

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

ISSUER = "https://auth.chaoslab.test"

# Its fetches are seconds apart: an idle connection is dropped after 1 s, before the key service
# drops it (after 5 s), so that a fetch never goes out on a connection being closed under it.
key_service = httpx.AsyncClient(
    base_url=os.environ["KEYS_URL"],
    timeout=5.0,
    headers={"x-client": "payments"},
    limits=httpx.Limits(keepalive_expiry=1.0),
)
known_keys: dict[str, jwt.PyJWK] = {}
charges: list[dict[str, object]] = []


async def key_for(kid: str) -> jwt.PyJWK | None:
    if kid not in known_keys:
        published = (await key_service.get("/.well-known/jwks.json")).json()
        known_keys.update({k["kid"]: jwt.PyJWK(k) for k in published["keys"]})
    return known_keys.get(kid)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def charge(request: Request) -> JSONResponse:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        key = await key_for(jwt.get_unverified_header(token).get("kid", ""))
        if key is None:
            raise jwt.InvalidTokenError("no published key has this kid")
        claims = jwt.decode(token, key, algorithms=["RS256"], audience="payments", issuer=ISSUER)
    except jwt.InvalidTokenError as exc:
        print(f"payments: refused a charge: invalid token: {exc}", flush=True)
        return JSONResponse({"error": f"invalid token: {exc}"}, status_code=401)
    if "payments:charge" not in claims.get("scope", "").split():
        return JSONResponse({"error": "scope payments:charge needed"}, status_code=403)
    body = await request.json()
    done = {"charge": len(charges) + 1, "order": body["order"], "amount": body["amount"]}
    charges.append(done)
    return JSONResponse(done, status_code=201)


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
