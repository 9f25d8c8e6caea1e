"""api: the key-value API that clients call. Writes go to the primary; reads go to the replica
unless it is behind what the session has already seen.

    PUT /kv/{key}  {"value": "..."}  -> 200 {"key": ..., "value": ...}
    GET /kv/{key}                    -> 200 {"key": ..., "value": ... or null}

The Session-Token is opaque to clients: base64 of {"seen": <log position>}, the write behind the
newest value the session has written or read. A client sends back the last one it was given.

Also correct: an opaque base64 JSON token, decoded into a small Session class; a read is sent to
the replica, and to the primary only when the replica's answer is older than the session.
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

primary = httpx.AsyncClient(base_url=os.environ["PRIMARY_URL"], timeout=5.0)
replica = httpx.AsyncClient(base_url=os.environ["REPLICA_URL"], timeout=5.0)


@dataclass
class Session:
    seen: int = 0  # the log position of the newest write the session wrote or read

    @classmethod
    def of(cls, request: Request) -> "Session":
        token = request.headers.get("Session-Token")
        if not token:
            return cls()
        try:
            return cls(int(json.loads(base64.urlsafe_b64decode(token))["seen"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return cls()

    def token(self) -> str:
        return base64.urlsafe_b64encode(json.dumps({"seen": self.seen}).encode()).decode()

    def answer(self, store_answer: httpx.Response) -> JSONResponse:
        """Pass the store's answer on; the session has now seen the write behind its value."""
        body = store_answer.json()
        if store_answer.status_code == 200:
            self.seen = max(self.seen, int(body["written_at"]))
        return JSONResponse(
            body, status_code=store_answer.status_code, headers={"Session-Token": self.token()}
        )


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def write(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    body = await request.json()
    answer = await primary.put(f"/kv/{key}", json={"value": body.get("value")})
    return Session.of(request).answer(answer)


async def read(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    session = Session.of(request)
    answer = await replica.get(f"/kv/{key}")
    applied = int(answer.headers.get("Log-Position", "0"))
    if answer.status_code != 200 or applied < session.seen:
        answer = await primary.get(f"/kv/{key}")
    return session.answer(answer)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/kv/{key}", write, methods=["PUT"]),
        Route("/kv/{key}", read, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
