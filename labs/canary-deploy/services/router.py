"""router: splits each app's traffic between its stable release, a baseline and a canary.
Owned by the lab, not by you.

GET  /{app}/...                    a user's request: to stable, the baseline or the canary
GET  /_rollouts                    every app's rollout: {app: {"state", "weight"}}
PUT  /_rollouts/{app}/weight       {"weight": 0..50}: the canary's share of the app's traffic,
                                   and the baseline's (a fresh copy of stable); stable the rest
POST /_rollouts/{app}/promote      the canary takes all the traffic: the rollout is over
POST /_rollouts/{app}/rollback     the canary takes none: the rollout is over
POST /_rollouts/{app}              a new canary of the app (the harness deploys it)
GET  /metrics                      for Prometheus: every request, by app, version and status

A rollout is "idle" (no canary), "progressing", "promoted" or "rolled_back"; only a progressing
one takes weights, a promotion or a rollback (409 otherwise). The split is exact: at weight 25,
one request in four of the app goes to the canary, one in four to the baseline, and each
request tells the release the share it takes (X-Traffic-Share: 25). Every request and every
rollout event is
written down (GET /_router/requests, /_router/events, for the checks).
"""

import os
import time
from typing import Any

import httpx
import uvicorn
from prometheus_client import Counter, Gauge, Histogram, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

APPS = ("prices", "search", "cart", "stock", "reviews")
VERSIONS = ("stable", "baseline", "canary")
MAX_WEIGHT = 50  # the baseline takes as much as the canary
CODES = ("2xx", "4xx", "5xx")

REQUESTS = Counter(
    "router_requests", "User requests answered, by app, version and status class",
    ["app", "version", "code"],
)  # fmt: skip
DURATION = Histogram(
    "router_request_duration_seconds", "Time to answer a user's request, by app and version",
    ["app", "version"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6,
             0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 2.5, 5.0),
)  # fmt: skip
WEIGHT = Gauge("router_canary_weight", "The canary's share of the app's traffic, in %", ["app"])
for _app in APPS:  # every series exists from the first scrape: rate() sees the first request
    WEIGHT.labels(_app)
    for _version in VERSIONS:
        DURATION.labels(_app, _version)
        for _code in CODES:
            REQUESTS.labels(_app, _version, _code)

UPSTREAMS = {
    version: httpx.AsyncClient(
        base_url=os.environ[f"{version.upper()}_URL"],
        timeout=5.0,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )
    for version in VERSIONS
}


class Rollout:
    def __init__(self) -> None:
        self.state = "idle"
        self.weight = 0
        self.credit = dict.fromkeys(VERSIONS, 0)  # smooth weighted round robin, as nginx's

    def shares(self) -> dict[str, int]:
        """Each version's share of the app's traffic, in %."""
        if self.state == "promoted":
            return {"stable": 0, "baseline": 0, "canary": 100}
        if self.state != "progressing":
            return {"stable": 100, "baseline": 0, "canary": 0}
        return {"stable": 100 - 2 * self.weight, "baseline": self.weight, "canary": self.weight}

    def pick(self) -> tuple[str, int]:
        """The version the next request goes to, and its share."""
        shares = self.shares()
        for version, share in shares.items():
            self.credit[version] += share
        chosen = max(VERSIONS, key=lambda version: self.credit[version])
        self.credit[chosen] -= 100
        return chosen, shares[chosen]


rollouts = {app: Rollout() for app in APPS}
requests_seen: list[dict[str, Any]] = []
events: list[dict[str, Any]] = []


def event(app: str, kind: str, weight: int) -> None:
    events.append({"app": app, "kind": kind, "weight": weight, "at": time.time()})
    WEIGHT.labels(app).set(weight)


async def forward(request: Request) -> Response:
    app = request.path_params["app"]
    if app not in rollouts:
        return JSONResponse({"error": f"no app {app!r}"}, status_code=404)
    version, share = rollouts[app].pick()
    began = time.time()
    try:
        answer = await UPSTREAMS[version].get(
            request.url.path, headers={"x-traffic-share": str(share)}
        )
        status, body = answer.status_code, answer.content
    except httpx.HTTPError as exc:
        status, body = 502, JSONResponse({"error": f"{version}: {exc!r}"}).body
    ended = time.time()
    REQUESTS.labels(app, version, f"{status // 100}xx").inc()
    DURATION.labels(app, version).observe(ended - began)
    requests_seen.append(
        {"app": app, "version": version, "status": status, "began": began, "ended": ended}
    )
    return Response(body, status, {"x-served-by": version}, "application/json")


def _rollout(request: Request) -> tuple[str, Rollout | None]:
    app = request.path_params["app"]
    return app, rollouts.get(app)


def _refused(app: str, rollout: Rollout | None) -> JSONResponse | None:
    if rollout is None:
        return JSONResponse({"error": f"no app {app!r}"}, status_code=404)
    if rollout.state != "progressing":
        return JSONResponse(
            {"error": f"{app}'s rollout is {rollout.state}, not progressing"}, status_code=409
        )
    return None


async def start(request: Request) -> JSONResponse:
    app, rollout = _rollout(request)
    if rollout is None:
        return JSONResponse({"error": f"no app {app!r}"}, status_code=404)
    rollout.state, rollout.weight = "progressing", 0
    rollout.credit = dict.fromkeys(VERSIONS, 0)
    event(app, "started", 0)
    return JSONResponse({"state": rollout.state, "weight": 0}, status_code=201)


async def set_weight(request: Request) -> JSONResponse:
    app, rollout = _rollout(request)
    refused = _refused(app, rollout)
    if refused is not None:
        return refused
    assert rollout is not None
    weight = (await request.json()).get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        return JSONResponse(
            {"error": f"weight is a whole number from 0 to {MAX_WEIGHT} (the baseline takes as "
             "much as the canary; promote for all of it)"},
            status_code=400,
        )  # fmt: skip
    rollout.weight = weight
    event(app, "weight", weight)
    return JSONResponse({"state": rollout.state, "weight": weight})


async def decide(request: Request) -> JSONResponse:
    app, rollout = _rollout(request)
    refused = _refused(app, rollout)
    if refused is not None:
        return refused
    assert rollout is not None
    decision = request.path_params["decision"]
    if decision not in ("promote", "rollback"):
        return JSONResponse({"error": "POST .../promote or .../rollback"}, status_code=404)
    promoted = decision == "promote"
    rollout.state = "promoted" if promoted else "rolled_back"
    rollout.weight = 100 if promoted else 0
    event(app, rollout.state, rollout.weight)
    return JSONResponse({"state": rollout.state, "weight": rollout.weight})


async def listing(request: Request) -> JSONResponse:
    listed = {app: {"state": r.state, "weight": r.weight} for app, r in rollouts.items()}
    return JSONResponse(listed)


async def recorded_requests(request: Request) -> JSONResponse:
    return JSONResponse(requests_seen)


async def recorded_events(request: Request) -> JSONResponse:
    return JSONResponse(events)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/health", health),
        Mount("/metrics", make_asgi_app()),
        Route("/_router/requests", recorded_requests),
        Route("/_router/events", recorded_events),
        Route("/_rollouts", listing),
        Route("/_rollouts/{app}", start, methods=["POST"]),
        Route("/_rollouts/{app}/weight", set_weight, methods=["PUT"]),
        Route("/_rollouts/{app}/{decision:str}", decide, methods=["POST"]),
        Route("/{app}/{rest:path}", forward),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
