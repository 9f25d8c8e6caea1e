"""The shop's frontend: the home page shows picks from the recommender, the profile page shows
the shopper's own details.

Endpoints are plain functions: Starlette runs each request on a worker thread, and the pool is
sized at startup like a deployment's `--threads`. A call to the recommender goes through a
circuit breaker, so a drowning recommender cannot take every worker thread with it.

A call that gets no answer in time (or no connection) is a failure for the breaker. A 5xx is
not: the recommender answered, and fast, so it holds no thread; the page gets the empty shelf
for it, and a stray error among good answers cannot open the breaker.

Wrong: an error answer (5xx) earns the fallback but counts as a success, so a recommender that
fails every call at once is never cut off: the frontend keeps sending it its full load, call
after call, and never gives it room to recover.
Rejected by: test_7_error_answers_open_the_breaker
"""

import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WORKER_THREADS = 16

# A healthy recommender answers in a few milliseconds; waiting longer only holds a thread.
RECOMMENDER_TIMEOUT = 0.3
recommender = httpx.Client(base_url=os.environ["RECOMMENDER_URL"], timeout=RECOMMENDER_TIMEOUT)

PROFILES = {
    "ada": {"name": "Ada", "city": "London", "orders": 12},
    "grace": {"name": "Grace", "city": "Arlington", "orders": 3},
}


class CircuitBreaker:
    """Closed: calls go through. Open: callers get the fallback at once. After `reset_timeout`
    it is half-open: one probe call goes through; its success closes the breaker, its failure
    opens it again. Shared by every worker thread, hence the lock.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.state = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May this caller call the dependency? In half-open, only the one probe may."""
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and self.clock() - self._opened_at >= self.reset_timeout:
                self.state = "half-open"  # this caller is the probe
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.state = "closed"
            self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self.state == "half-open" or self._failures >= self.failure_threshold:
                self.state = "open"
                self._opened_at = self.clock()


breaker = CircuitBreaker(failure_threshold=5, reset_timeout=1.0)


def fallback() -> JSONResponse:
    """An empty shelf now is better than a full one in thirty seconds."""
    return JSONResponse({"items": [], "fallback": True})


def recommendations(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
    if not breaker.allow():
        return fallback()
    try:
        response = recommender.get("/recommend", params={"user": user})
    except httpx.HTTPError:  # no answer in time, no connection: that is what holds threads
        breaker.record_failure()
        return fallback()
    breaker.record_success()  # it answered, and fast: it is up
    if response.status_code != 200:
        return fallback()  # an error answer: show the empty shelf, not a broken page
    return JSONResponse({"items": response.json()["items"]})


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
