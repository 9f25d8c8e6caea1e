"""Who is calling orders, and who orders is when it calls payments.

Also correct: written differently from the reference. The JWKS is held as PyJWT's PyJWKSet
and refreshed by one shared asyncio task that callers await (no lock), at most once per 1.2 s
for unknown kids; the service token is replaced by a shared task too, once 80 % of its life
has gone, with the client's secret in HTTP Basic; a token is verified with
jwt.decode_complete and a leeway of 10 s.
"""

import asyncio
import os
import time

import httpx
import jwt
from starlette.requests import Request

ISSUER = "https://auth.chaoslab.test"

key_service = httpx.AsyncClient(base_url=os.environ["KEYS_URL"], timeout=1.0)
auth = httpx.AsyncClient(base_url=os.environ["AUTH_URL"], timeout=2.0)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class KeySet:
    MIN_INTERVAL = 1.2  # seconds between two fetches

    def __init__(self) -> None:
        self.jwks: jwt.PyJWKSet | None = None
        self.not_before = 0.0
        self.fetching: asyncio.Task[None] | None = None

    async def _fetch(self) -> None:
        try:
            answer = await key_service.get("/.well-known/jwks.json")
            if answer.status_code == 200:
                self.jwks = jwt.PyJWKSet.from_dict(answer.json())
        except httpx.HTTPError:
            pass

    def _known(self, kid: str) -> jwt.PyJWK | None:
        if self.jwks is None:
            return None
        try:
            return self.jwks[kid]
        except KeyError:
            return None

    async def find(self, kid: str) -> jwt.PyJWK | None:
        found = self._known(kid)
        if found is not None:
            return found
        if self.fetching is None and time.monotonic() >= self.not_before:
            self.not_before = time.monotonic() + self.MIN_INTERVAL
            self.fetching = asyncio.create_task(self._fetch())
            self.fetching.add_done_callback(lambda _: setattr(self, "fetching", None))
        if self.fetching is not None:
            await asyncio.shield(self.fetching)
        return self._known(kid)


class OwnToken:
    def __init__(self) -> None:
        self.value = ""
        self.renew_at = 0.0
        self.asking: asyncio.Task[None] | None = None

    async def _ask(self) -> None:
        started = time.monotonic()
        answer = await auth.post(
            "/oauth/token",
            auth=("orders", os.environ["ORDERS_CLIENT_SECRET"]),
            data={"grant_type": "client_credentials", "scope": "payments:charge"},
        )
        answer.raise_for_status()
        body = answer.json()
        self.value = body["access_token"]
        self.renew_at = started + 0.8 * float(body["expires_in"])

    async def current(self) -> str:
        if time.monotonic() >= self.renew_at:
            if self.asking is None or self.asking.done():
                self.asking = asyncio.create_task(self._ask())
            await asyncio.shield(self.asking)
        return self.value


key_set = KeySet()
own = OwnToken()


async def authenticate(request: Request, scope: str) -> dict:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise Refused(401, "no bearer token")
    token = header[len("Bearer ") :]
    try:
        key = await key_set.find(str(jwt.get_unverified_header(token).get("kid")))
        if key is None:
            raise Refused(401, "signed by a key that is not published")
        decoded = jwt.decode_complete(
            token,
            key.key,
            algorithms=["RS256"],
            audience="orders",
            issuer=ISSUER,
            leeway=10,
            options={"require": ["exp", "iss", "aud", "iat"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(401, str(exc)) from exc
    claims = decoded["payload"]
    if scope not in claims.get("scope", "").split():
        raise Refused(403, f"missing scope {scope}")
    return claims


async def service_token() -> str:
    return await own.current()
