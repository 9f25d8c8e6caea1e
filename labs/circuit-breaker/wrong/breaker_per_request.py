"""The shop's frontend: the home page shows picks from the recommender, the profile page shows
the shopper's own details. A call to the recommender goes through a circuit breaker.

Wrong: each request builds its own breaker, so no failure count survives a request: the breaker
never opens and every request waits for the timeout.
Rejected by: test_1_answers_fail_fast_while_open,
test_3_recommender_gets_no_calls_while_open_but_probes, test_7_error_answers_open_the_breaker
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


def fallback() -> JSONResponse:
    """An empty shelf now is better than a full one in thirty seconds."""
    return JSONResponse({"items": [], "fallback": True})


def recommendations(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout=1.0)
    if not breaker.allow():
        return fallback()
    try:
        response = recommender.get("/recommend", params={"user": user})
        response.raise_for_status()
        items = response.json()["items"]
    except httpx.HTTPError:
        breaker.record_failure()
        return fallback()
    breaker.record_success()
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
