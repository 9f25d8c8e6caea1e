"""Who is calling orders, and who orders is when it calls payments.

authenticate(request, scope) returns the claims of the request's bearer token, or raises
Refused. service_token() returns the token orders shows payments.

Wrong: one lock guards every lookup of a key, the ones orders knows too, so while a fetch of
the JWKS for an unknown kid waits on a slow key service, every request waits with it.
Rejected by: test_7_known_keys_work_while_the_key_service_is_out
"""

import asyncio
import os
import time

import httpx
import jwt
from starlette.requests import Request

ISSUER = "https://auth.chaoslab.test"
AUDIENCE = "orders"
JWKS = "/.well-known/jwks.json"
LEEWAY = 5  # seconds: auth's clock may run a little ahead of or behind ours
REFETCH_AFTER = 1.0  # seconds at least between two fetches of the JWKS for an unknown kid
REFRESH_BEFORE = 0.5  # seconds before it expires, a service token is replaced

key_service = httpx.AsyncClient(base_url=os.environ["KEYS_URL"], timeout=2.0)
auth = httpx.AsyncClient(base_url=os.environ["AUTH_URL"], timeout=2.0)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PublishedKeys:
    """The key service's public keys, by kid: fetched once, and again for a kid we do not
    know, but never more often than every REFETCH_AFTER seconds, whatever the callers send."""

    def __init__(self) -> None:
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched = -REFETCH_AFTER
        self.lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        async with self.lock:
            if kid not in self.keys and time.monotonic() - self.fetched >= REFETCH_AFTER:
                self.fetched = time.monotonic()
                try:
                    answer = await key_service.get(JWKS)
                    answer.raise_for_status()
                    published = answer.json()["keys"]
                except (httpx.HTTPError, ValueError, KeyError):
                    return None  # we keep the keys we know
                self.keys.update({k["kid"]: jwt.PyJWK(k) for k in published if "kid" in k})
        return self.keys.get(kid)


class ServiceToken:
    """orders' own token for payments: asked for once, used until shortly before it expires,
    and replaced by one request to auth however many callers need it meanwhile."""

    def __init__(self) -> None:
        self.token = ""
        self.expires = 0.0
        self.lock = asyncio.Lock()

    def fresh(self) -> bool:
        return time.monotonic() < self.expires - REFRESH_BEFORE

    async def get(self) -> str:
        if self.fresh():
            return self.token
        async with self.lock:
            if not self.fresh():
                asked = time.monotonic()
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
                body = answer.json()
                self.token = body["access_token"]
                self.expires = asked + float(body["expires_in"])
        return self.token


published_keys = PublishedKeys()
own_token = ServiceToken()


async def authenticate(request: Request, scope: str) -> dict:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "a bearer token is needed")
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = await published_keys.get(str(kid))
        if key is None:
            raise jwt.InvalidTokenError(f"no published key has kid {kid!r}")
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],  # never the algorithm the token names
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(401, f"invalid token: {exc}") from exc
    if scope not in str(claims.get("scope", "")).split():
        raise Refused(403, f"this needs scope {scope}")
    return claims


async def service_token() -> str:
    return await own_token.get()
