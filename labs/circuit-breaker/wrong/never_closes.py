"""The shop's frontend: the home page shows picks from the recommender, the profile page shows
the shopper's own details. After five failed calls in a row the frontend stops calling the
recommender and shows an empty shelf.

Wrong: once open the breaker never closes again (no half-open probe), so the shelf stays empty
after the recommender recovered.
Rejected by: test_5_real_answers_again_after_recovery
"""

import os
import threading
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

# A healthy recommender answers in a few milliseconds; waiting longer only holds a thread.
RECOMMENDER_TIMEOUT = 0.3
recommender = httpx.Client(base_url=os.environ["RECOMMENDER_URL"], timeout=RECOMMENDER_TIMEOUT)

PROFILES = {
    "ada": {"name": "Ada", "city": "London", "orders": 12},
    "grace": {"name": "Grace", "city": "Arlington", "orders": 3},
}


class CircuitBreaker:
    """Counts failed calls in a row; after `failure_threshold` of them it trips and callers
    stop calling. Shared by every worker thread, hence the lock."""

    def __init__(self, failure_threshold: int = 5) -> None:
        self.failure_threshold = failure_threshold
        self.tripped = False
        self._failures = 0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            return not self.tripped

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self.tripped = True


breaker = CircuitBreaker(failure_threshold=5)


def fallback() -> JSONResponse:
    """An empty shelf now is better than a full one in thirty seconds."""
    return JSONResponse({"items": []})


def recommendations(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "guest")
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
