"""How the gateway and orders log: one JSON object per line, each carrying the id of the
request it is about.

A logging.Filter stamps every record with the current request's id; the formatter writes the
fields it knows. `client(url)` is an httpx client that adds the id to every request it sends,
so no call can forget it; `middleware(log)` names each request and logs how it ended.

Also correct: the id reaches each record through a logging.Filter and each outgoing call
through an httpx event hook; the ending line comes from Starlette's BaseHTTPMiddleware; times
are UTC with a Z, levels upper case, ids from secrets.token_hex.
"""

import json
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

import httpx
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

current_id: ContextVar[str | None] = ContextVar("current_id", default=None)
FIELDS = ("order", "sku", "error", "route", "status", "duration_ms")


class AddRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_id.get()
        return True


class Json(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        millis = int(record.msecs)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {
            "time": f"{stamp}.{millis:03d}Z",
            "level": record.levelname,
            "service": self.service,
            "request_id": getattr(record, "request_id", None),
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        return json.dumps(line)


def setup(service: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(AddRequestId())
    handler.setFormatter(Json(service))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return logging.getLogger(service)


async def _send_id(request: httpx.Request) -> None:
    rid = current_id.get()
    if rid:
        request.headers["X-Request-Id"] = rid


def client(url: str, timeout: float) -> httpx.AsyncClient:
    """An HTTP client for another service: every request it sends carries the id."""
    return httpx.AsyncClient(base_url=url, timeout=timeout, event_hooks={"request": [_send_id]})


def middleware(log: logging.Logger) -> Middleware:
    async def name_and_time(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("X-Request-Id") or secrets.token_hex(16)
        current_id.set(rid)
        started = time.monotonic()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-Id"] = rid
            return response
        finally:
            log.info(
                "done",
                extra={
                    "route": request.url.path,
                    "status": status,
                    "duration_ms": (time.monotonic() - started) * 1000,
                },
            )

    return Middleware(BaseHTTPMiddleware, dispatch=name_and_time)
