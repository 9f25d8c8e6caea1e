"""keys: the key service. Owned by the lab, not by you.

It holds the signing keys. auth asks it to sign every token it issues (POST /sign), and it
publishes the public half of each key as a JWKS on GET /.well-known/jwks.json, every key named
by its `kid`. When the keys rotate (POST /rotate), a new key signs from then on and the old one
stays published, so the tokens it signed stay valid until they expire.

The private keys are made when it starts, and never leave it.
"""

import asyncio
import json
import os
import secrets

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos


def new_key() -> tuple[str, rsa.RSAPrivateKey]:
    kid = f"key-{secrets.token_hex(4)}"
    return kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)


keys = [new_key()]  # the last one signs


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def jwks(request: Request) -> JSONResponse:
    published = []
    for kid, private in keys:
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    return JSONResponse({"keys": published})


async def sign(request: Request) -> JSONResponse:
    claims = await request.json()
    kid, private = keys[-1]
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})
    return JSONResponse({"token": token, "kid": kid})


async def rotate(request: Request) -> JSONResponse:
    keys.append(await asyncio.to_thread(new_key))
    return JSONResponse({"kid": keys[-1][0]}, status_code=201)


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/.well-known/jwks.json", jwks),
            Route("/sign", sign, methods=["POST"]),
            Route("/rotate", rotate, methods=["POST"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
