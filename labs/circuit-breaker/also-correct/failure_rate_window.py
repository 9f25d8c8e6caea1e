"""The shop's frontend: the home page shows picks from the recommender, the profile page shows
the shopper's own details.

The recommender is called through a breaker that judges its recent record, not a streak: it
keeps the outcomes of the last 20 calls and opens when half of them failed. A cool-down later
one caller takes the probe slot; everyone else gets the empty shelf until the probe is back.

Also correct: a failure-rate breaker over a sliding window of the last 20 outcomes (opens at 50 %
failed, once 10 calls are known), with the half-open probe as a non-blocking lock.
"""

import enum
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WORKER_THREADS = 16

recommender = httpx.Client(
    base_url=os.environ["RECOMMENDER_URL"], timeout=httpx.Timeout(0.25, connect=0.25)
)

PROFILES = {
    "ada": {"name": "Ada", "city": "London", "orders": 12},
    "grace": {"name": "Grace", "city": "Arlington", "orders": 3},
}


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"


class FailureRateBreaker:
    """Opens when at least `max_failure_rate` of the last `window` calls failed."""

    def __init__(
        self,
        window: int = 20,
        min_calls: int = 10,
        max_failure_rate: float = 0.5,
        cool_down: float = 1.0,
    ) -> None:
        self.outcomes: deque[bool] = deque(maxlen=window)  # True: the call failed
        self.min_calls = min_calls
        self.max_failure_rate = max_failure_rate
        self.cool_down = cool_down
        self.state = State.CLOSED
        self.retry_at = 0.0
        self.lock = threading.Lock()
        self.probe = threading.Lock()  # held by the one caller that tries a half-open call

    def try_call(self) -> bool | None:
        """True: call normally. False: do not call. None: call as the probe."""
        with self.lock:
            if self.state is State.CLOSED:
                return True
            if time.monotonic() < self.retry_at:
                return False
        return None if self.probe.acquire(blocking=False) else False

    def done(self, failed: bool, probing: bool) -> None:
        with self.lock:
            if probing:
                self.probe.release()
                if failed:
                    self.retry_at = time.monotonic() + self.cool_down
                else:
                    self.state = State.CLOSED
                    self.outcomes.clear()
                return
            if self.state is State.OPEN:
                return  # a call that started before it opened says nothing new
            self.outcomes.append(failed)
            failures = sum(self.outcomes)
            if len(self.outcomes) >= self.min_calls and failures >= self.max_failure_rate * len(
                self.outcomes
            ):
                self.state = State.OPEN
                self.retry_at = time.monotonic() + self.cool_down


breaker = FailureRateBreaker()
EMPTY_SHELF = {"items": [], "fallback": True}


def recommendations(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
    verdict = breaker.try_call()
    if verdict is False:
        return JSONResponse(EMPTY_SHELF)
    probing = verdict is None
    try:
        response = recommender.get("/recommend", params={"user": user})
        response.raise_for_status()
        items = response.json()["items"]
    except (httpx.HTTPError, ValueError, KeyError):
        breaker.done(failed=True, probing=probing)
        return JSONResponse(EMPTY_SHELF)
    breaker.done(failed=False, probing=probing)
    return JSONResponse({"items": items})


def profile(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
    details = PROFILES.get(user, {"name": user, "city": None, "orders": 0})
    return JSONResponse({"user": user, **details})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    yield
    recommender.close()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/recommendations", recommendations),
        Route("/profile", profile),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    port = int(os.environ["PORT"])
    uvicorn.run(app, host=os.environ["HOST"], port=port, log_level="warning")
