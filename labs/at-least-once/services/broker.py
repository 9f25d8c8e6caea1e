"""broker: a small message queue that delivers every message at least once.

Owned by the lab, not by you. It works like a cloud queue with a visibility timeout:

    POST /messages {"id": "m-17", "body": {...}}   publish (201; the same id again: 200, kept once)
    GET  /messages/next?consumer=NAME               lease the next message for LEASE_SECONDS:
                                                    200 {"id", "body", "delivery"}, or 204 if none
    POST /ack/{id}                                  done with it: 200 while the lease holds (or if
                                                    already acked); 409 once the lease has expired
    GET  /messages                                  every message, its state and its deliveries

A message leased and not acked in time is back in the queue and is delivered again, to whoever
asks next. The checks read GET /messages to see what was published, delivered and acked.
"""

import os
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.service_kit import with_chaos

LEASE_SECONDS = 1.0


@dataclass
class Message:
    id: str
    body: object
    acked: bool = False
    lease_until: float = 0.0  # monotonic; 0 while never leased
    deliveries: list[str] = field(default_factory=list)  # the consumer of each delivery
    refused_acks: int = 0

    def visible(self, now: float) -> bool:
        return not self.acked and now >= self.lease_until

    def record(self) -> dict[str, object]:
        now = time.monotonic()
        state = "acked" if self.acked else ("leased" if now < self.lease_until else "ready")
        return {
            "id": self.id,
            "body": self.body,
            "state": state,
            "deliveries": self.deliveries,
            "refused_acks": self.refused_acks,
        }


queue: dict[str, Message] = {}  # in publish order


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def publish(request: Request) -> JSONResponse:
    data = await request.json()
    message_id = data.get("id")
    if not isinstance(message_id, str) or not message_id or "body" not in data:
        return JSONResponse({"error": 'expected {"id": "<id>", "body": ...}'}, status_code=400)
    if message_id in queue:
        return JSONResponse({"id": message_id}, status_code=200)
    queue[message_id] = Message(message_id, data["body"])
    return JSONResponse({"id": message_id}, status_code=201)


async def next_message(request: Request) -> Response:
    now = time.monotonic()
    for message in queue.values():
        if message.visible(now):
            message.lease_until = now + LEASE_SECONDS
            message.deliveries.append(request.query_params.get("consumer", "?"))
            return JSONResponse(
                {"id": message.id, "body": message.body, "delivery": len(message.deliveries)}
            )
    return Response(status_code=204)


async def ack(request: Request) -> JSONResponse:
    message = queue.get(request.path_params["id"])
    if message is None:
        return JSONResponse({"error": "no such message"}, status_code=404)
    if message.acked:
        return JSONResponse({"id": message.id, "acked": True})
    if time.monotonic() >= message.lease_until:
        message.refused_acks += 1
        error = "lease expired: the message is back in the queue and will be delivered again"
        return JSONResponse({"error": error}, status_code=409)
    message.acked = True
    return JSONResponse({"id": message.id, "acked": True})


async def list_messages(request: Request) -> JSONResponse:
    return JSONResponse([message.record() for message in queue.values()])


app = with_chaos(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/messages", publish, methods=["POST"]),
            Route("/messages", list_messages, methods=["GET"]),
            Route("/messages/next", next_message, methods=["GET"]),
            Route("/ack/{id}", ack, methods=["POST"]),
        ]
    )
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
