"""auth: the OAuth 2.0 authorization server for calls between services. Owned by the lab, not
by you.

POST /oauth/token, form-encoded, with the client-credentials grant:

    grant_type=client_credentials&client_id=orders&client_secret=...&scope=payments:charge

(the client's id and secret may come in an HTTP Basic Authorization header instead) answers

    {"access_token": "<JWT>", "token_type": "Bearer", "expires_in": 3, "scope": "payments:charge"}

The token is an RS256 JWT signed by the key service, from issuer https://auth.chaoslab.test,
for audience `payments`, valid for 3 seconds. A wrong client or secret is answered 401
{"error": "invalid_client"}, a scope the client may not have 400 {"error": "invalid_scope"}.
Checking a secret takes about 100 ms, as it does in any authorization server that stores its
clients' secrets as slow hashes.
"""

import asyncio
import base64
import hmac
import math
import os
import secrets
import time
from urllib.parse import parse_qs

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

ISSUER = "https://auth.chaoslab.test"
LIFETIME = 3  # seconds
CHECK_SECRET = 0.1  # seconds
# Who may ask for tokens, with which secret, for which scopes; and who each scope is for.
CLIENTS = {"orders": (os.environ["ORDERS_CLIENT_SECRET"], {"payments:charge"})}
AUDIENCES = {"payments:charge": "payments"}

# Token requests can be seconds apart: an idle connection is dropped after 1 s, before the key
# service drops it (after 5 s), so that a request never goes out on a connection being closed.
key_service = httpx.AsyncClient(
    base_url=os.environ["KEYS_URL"], timeout=5.0, limits=httpx.Limits(keepalive_expiry=1.0)
)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        decoded = base64.b64decode(basic[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


async def token(request: Request) -> JSONResponse:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    client_id, secret = credentials(request, form)
    await asyncio.sleep(CHECK_SECRET)
    known, allowed = CLIENTS.get(client_id, ("", set()))
    if not known or not hmac.compare_digest(known.encode(), secret.encode()):
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    scopes = form.get("scope", " ".join(sorted(allowed))).split()
    if not scopes or not set(scopes) <= allowed:
        return JSONResponse({"error": "invalid_scope"}, status_code=400)
    now = time.time()
    claims = {
        "iss": ISSUER,
        "sub": client_id,
        "aud": sorted({AUDIENCES[s] for s in scopes}),
        "scope": " ".join(scopes),
        "iat": int(now),
        "exp": math.ceil(now + LIFETIME),  # whole seconds, never less than it says
        "jti": secrets.token_hex(8),
    }
    signed = await key_service.post("/sign", json=claims)
    signed.raise_for_status()
    return JSONResponse(
        {
            "access_token": signed.json()["token"],
            "token_type": "Bearer",
            "expires_in": LIFETIME,
            "scope": claims["scope"],
        }
    )


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/oauth/token", token, methods=["POST"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
