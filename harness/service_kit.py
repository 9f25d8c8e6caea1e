"""What the harness-owned services of a lab share: HTTP faults on a control route, and a record
of every request they received. Never used by the learner's services.

    app = with_chaos(Starlette(routes=[...]))

Control routes (the harness only, through `Faults.http`):
    POST   /_chaoslab/faults        add a rule (JSON: HttpFaultRule fields)
    DELETE /_chaoslab/faults/{id}   remove a rule;  DELETE /_chaoslab/faults  removes all
    GET    /_chaoslab/faults        the rules and how many requests each one hit
    GET    /_chaoslab/received      every request received (method, path, time, headers, body,
                                    and `answered` and `status`: when its answer started and
                                    its status, if it got one)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL = "/_chaoslab"
RECORDED_HEADERS = (
    "idempotency-key",
    "retry-after",
    "x-request-id",
    "x-client",
    "authorization",
    "traceparent",
)


@dataclass
class HttpFaultRule:
    """One HTTP fault: which requests it hits and what it does to them.

    A rule hits requests whose path starts with `path` (and whose method is `method`, and whose
    JSON body has the fields of `where`, if set; a value ending in `*` matches by prefix): only
    the `nth` of them, or the first `first` of them, or else each with probability
    `share`. `crash` kills the whole service on a hit, "before" it handles the request or
    "after" it did (the effect happened; the answer is never sent). A hit request waits
    `delay_ms`, then is answered `status` (with `Retry-After: retry_after` if set) without
    reaching the service; or, with `duplicate`, is served and its response is delivered again
    to the next matching request. `response_delay_ms` holds the answer back after the service
    handled the request: the effect has happened, the caller does not know yet.
    """

    id: str
    path: str = "/"
    method: str | None = None
    share: float = 1.0
    first: int | None = None
    status: int | None = None
    retry_after: float | None = None
    delay_ms: int = 0
    response_delay_ms: int = 0
    duplicate: bool = False
    nth: int | None = None
    crash: str | None = None  # "before" the service handles the request, or "after"
    where: dict[str, str] | None = None
    matched: int = 0
    hits: int = 0
    _replay: list[Message] | None = field(default=None, repr=False)

    def matches(self, method: str, path: str, body: object = None) -> bool:
        return (
            path.startswith(self.path)
            and (self.method is None or self.method == method)
            and (not self.where or _has_fields(body, self.where))
        )

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_replay")
        return data


class ChaosMiddleware:
    """ASGI middleware: applies HTTP fault rules and records every request."""

    def __init__(self, app: ASGIApp, seed: str | None = None) -> None:
        self.app = app
        service = os.environ.get("SERVICE_NAME", "service")
        self.random = random.Random(f"{seed or os.environ.get('CHAOSLAB_SEED', '0')}:{service}")
        self.rules: list[HttpFaultRule] = []
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL):
            await self._control(scope, receive, send)
            return
        body = await _read_body(receive)
        record = self._record(scope, body)
        replay_receive = _replaying(body)
        send = _timed(send, record)
        rule = self._rule_for(scope["method"], path, record["body"])
        if rule is None:
            await self.app(scope, replay_receive, send)
            return
        if rule._replay is not None:
            messages, rule._replay = rule._replay, None
            for message in messages:
                await send(message)
            return
        if rule.delay_ms:
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule.crash == "before":
            _crash(f"request {rule.matched} on {path}, before handling it")
        if rule.crash == "after":
            await self.app(scope, replay_receive, _discard)
            _crash(f"request {rule.matched} on {path}, after handling it")
        if rule.status is not None:
            headers = [(b"content-type", b"application/json")]
            if rule.retry_after is not None:
                headers.append((b"retry-after", _seconds(rule.retry_after).encode()))
            await _respond(send, rule.status, {"error": "injected by chaoslab"}, headers)
            return
        if rule.duplicate:
            captured: list[Message] = []

            async def capture(message: Message) -> None:
                captured.append(message)
                await send(message)

            await self.app(scope, replay_receive, capture)
            rule._replay = captured
            return
        if rule.response_delay_ms:
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, replay_receive, hold)
            await asyncio.sleep(rule.response_delay_ms / 1000)
            for message in held:
                await send(message)
            return
        await self.app(scope, replay_receive, send)

    def _rule_for(self, method: str, path: str, body: object) -> HttpFaultRule | None:
        for rule in self.rules:
            if not rule.matches(method, path, body):
                continue
            rule.matched += 1
            if rule._replay is not None:
                return rule
            if rule.nth is not None:
                hit = rule.matched == rule.nth
            elif rule.first is not None:
                hit = rule.matched <= rule.first
            else:
                hit = self.random.random() < rule.share
            if hit:
                rule.hits += 1
                return rule
        return None

    def _record(self, scope: Scope, body: bytes) -> dict[str, Any]:
        headers = {
            k.decode(): v.decode(errors="replace")
            for k, v in scope["headers"]
            if k.decode().lower() in RECORDED_HEADERS
        }
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        record = {
            "time": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body": parsed,
        }
        self.received.append(record)
        return record

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if path == f"{CONTROL}/received" and method == "GET":
            await _respond(send, 200, self.received)
        elif path == f"{CONTROL}/faults" and method == "GET":
            await _respond(send, 200, [r.public() for r in self.rules])
        elif path == f"{CONTROL}/faults" and method == "POST":
            try:
                spec = json.loads(await _read_body(receive))
                rule = HttpFaultRule(**{k: v for k, v in spec.items() if not k.startswith("_")})
            except (TypeError, ValueError) as exc:
                await _respond(send, 400, {"error": f"bad fault rule: {exc}"})
                return
            self.rules = [r for r in self.rules if r.id != rule.id] + [rule]
            await _respond(send, 201, rule.public())
        elif path == f"{CONTROL}/faults" and method == "DELETE":
            self.rules.clear()
            await _respond(send, 200, {"removed": "all"})
        elif path.startswith(f"{CONTROL}/faults/") and method == "DELETE":
            rule_id = path.rsplit("/", 1)[1]
            self.rules = [r for r in self.rules if r.id != rule_id]
            await _respond(send, 200, {"removed": rule_id})
        else:
            await _respond(send, 404, {"error": f"no control route {method} {path}"})


def _crash(where: str) -> NoReturn:
    """Die at once, like kill -9: no answer, no cleanup (os._exit also works as a container's
    pid 1, which cannot send itself SIGKILL)."""
    sys.stderr.write(f"chaoslab: crash point: died at {where}\n")
    sys.stderr.flush()
    os._exit(137)


async def _discard(message: Message) -> None:
    """A `send` that drops the answer: the crash comes before it leaves."""


def with_chaos(app: ASGIApp) -> ChaosMiddleware:
    """Wrap a harness-owned service's app with HTTP faults and a request record."""
    return ChaosMiddleware(app)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that keeps the connection open
        return {"type": "http.disconnect"}

    return receive


def _has_fields(body: object, where: dict[str, str]) -> bool:
    """Whether a JSON body has every field of `where` (a value ending in `*`: a prefix)."""
    if not isinstance(body, dict):
        return False
    for name, wanted in where.items():
        value = body.get(name)
        if not isinstance(value, str):
            return False
        if wanted.endswith("*") and not value.startswith(wanted[:-1]):
            return False
        if not wanted.endswith("*") and value != wanted:
            return False
    return True


def _timed(send: Send, record: dict[str, Any]) -> Send:
    """`send`, noting in the request's record when its answer started: a check that times what
    a client did after an answer measures from the answer, not from a delay the fault asked for
    (which a busy machine stretches)."""

    async def timed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            record["answered"] = time.time()
            record["status"] = message["status"]
        await send(message)

    return timed_send


async def _respond(
    send: Send, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    head = headers or [(b"content-type", b"application/json")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*head, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
