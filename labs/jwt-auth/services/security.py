"""Who is calling orders, and who orders is when it calls payments.

authenticate(request, scope) returns the claims of the request's bearer token, or raises
Refused. service_token() returns the token orders shows payments.
"""

import os

import httpx
import jwt
from starlette.requests import Request

ISSUER = "https://auth.chaoslab.test"
JWKS = "/.well-known/jwks.json"

key_service = httpx.AsyncClient(base_url=os.environ["KEYS_URL"], timeout=2.0)
auth = httpx.AsyncClient(base_url=os.environ["AUTH_URL"], timeout=2.0)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def authenticate(request: Request, scope: str) -> dict:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        header = jwt.get_unverified_header(token)
        published = (await key_service.get(JWKS)).json()
        key = next(k for k in published["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(
            token,
            jwt.PyJWK(key).key,
            algorithms=[header["alg"]],
            issuer=ISSUER,
            options={"verify_aud": False},  # the token's audience is set by auth
        )
    except (jwt.InvalidTokenError, KeyError, StopIteration) as exc:
        raise Refused(401, f"invalid token: {exc}") from exc
    if scope not in claims.get("scope", "").split():
        raise Refused(401, f"this needs scope {scope}")
    return claims


async def service_token() -> str:
    answer = await auth.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "orders",
            "client_secret": os.environ["ORDERS_CLIENT_SECRET"],
            "scope": "payments:charge",
        },
    )
    answer.raise_for_status()
    return answer.json()["access_token"]
