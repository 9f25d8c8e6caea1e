"""kms: the key management service. Owned by the lab, not by you.

It holds the key-encryption keys (KEKs), which never leave it: you send it a data key to wrap,
and get back the wrapped data key, which is safe to store; you send the wrapped key back to
get the data key when you need it.

    POST /wrap    {"key": "<base64 data key>"}      -> 200 {"kek": "kek-1", "wrapped": "<b64>"}
    POST /unwrap  {"kek": "kek-1", "wrapped": "<b64>"} -> 200 {"key": "<base64 data key>"}
    POST /rewrap  {"kek": "kek-1", "wrapped": "<b64>"} -> 200 {"kek": "kek-2", "wrapped": "<b64>"}

/wrap and /rewrap use the current KEK; /rewrap gives a data key wrapped by an older KEK wrapped by
the current one, without the data key ever leaving the KMS. Unwrapping with a KEK that was
retired answers 410, a wrapped key that was not made here 400. The KEKs rotate and are retired
by the security team (the checks): POST /rotate, DELETE /keks/{kek}.
"""

import base64
import os
import secrets

import uvicorn
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.service_kit import with_chaos

keks = {"kek-1": AESGCM.generate_key(bit_length=256)}
current = "kek-1"
retired: set[str] = set()
issued: list[str] = []  # every wrapped key this KMS gave out


def wrap_with(kek: str, key: bytes) -> str:
    nonce = secrets.token_bytes(12)
    wrapped = base64.b64encode(nonce + AESGCM(keks[kek]).encrypt(nonce, key, kek.encode()))
    issued.append(wrapped.decode())
    return wrapped.decode()


def unwrap_with(kek: str, wrapped: str) -> bytes | None:
    blob = base64.b64decode(wrapped)
    try:
        return AESGCM(keks[kek]).decrypt(blob[:12], blob[12:], kek.encode())
    except (InvalidTag, ValueError):
        return None


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def wrap(request: Request) -> JSONResponse:
    key = base64.b64decode((await request.json())["key"])
    return JSONResponse({"kek": current, "wrapped": wrap_with(current, key)})


async def unwrapped(request: Request) -> tuple[bytes | None, JSONResponse | None]:
    body = await request.json()
    kek = str(body.get("kek"))
    if kek in retired:
        return None, JSONResponse({"error": f"{kek} is retired"}, status_code=410)
    key = unwrap_with(kek, str(body.get("wrapped"))) if kek in keks else None
    if key is None:
        return None, JSONResponse({"error": "not a key wrapped here"}, status_code=400)
    return key, None


async def unwrap(request: Request) -> JSONResponse:
    key, refused = await unwrapped(request)
    if refused is not None:
        return refused
    return JSONResponse({"key": base64.b64encode(key or b"").decode()})


async def rewrap(request: Request) -> JSONResponse:
    key, refused = await unwrapped(request)
    if refused is not None:
        return refused
    return JSONResponse({"kek": current, "wrapped": wrap_with(current, key or b"")})


async def rotate(request: Request) -> JSONResponse:
    global current
    current = f"kek-{len(keks) + 1}"
    keks[current] = AESGCM.generate_key(bit_length=256)
    return JSONResponse({"kek": current}, status_code=201)


async def retire(request: Request) -> JSONResponse:
    kek = request.path_params["kek"]
    if kek == current:
        return JSONResponse({"error": "the current KEK cannot be retired"}, status_code=409)
    retired.add(kek)
    return JSONResponse({"retired": kek})


async def wrapped_keys(request: Request) -> JSONResponse:
    return JSONResponse({"issued": issued, "current": current, "retired": sorted(retired)})


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/wrap", wrap, methods=["POST"]),
            Route("/unwrap", unwrap, methods=["POST"]),
            Route("/rewrap", rewrap, methods=["POST"]),
            Route("/rotate", rotate, methods=["POST"]),
            Route("/keks/{kek}", retire, methods=["DELETE"]),
            Route("/issued", wrapped_keys),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
