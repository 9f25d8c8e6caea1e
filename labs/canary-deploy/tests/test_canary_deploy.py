"""The checks of canary-deploy: five apps get a new release at once, each rolled out as a canary
by the learner's controller while users keep asking for their items.

One scenario runs once for the module. The harness builds each canary's flaw in (through the
releases' fault switch), sends every app RATE requests a second through the router (paced, never
in bursts: at weight 25 exactly one request in four of an app reaches its canary), and starts the
five rollouts at once, once Prometheus has scraped the router:

  prices   a good canary
  search   its canary fails every 5th request (HTTP 500): 20 %
  cart     its canary answers every request 300 ms late
  stock    its canary holds up on a quarter of the traffic; from half of it on it answers 503
           to everything (the router tells each release its share, X-Traffic-Share)
  reviews  a good canary, while stable wobbles: from the rollout's start until the canary
           leaves its first step, stable fails every other request

Traffic goes on until every rollout is promoted or rolled back (or DECIDE_WITHIN has passed),
then AFTER seconds more. The checks judge the router's record of every user request and of
every rollout event: what the users got, never what the controller says.
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from harness import CheckResult, LabEnvironment, expect

APPS = ("prices", "search", "cart", "stock", "reviews")
RATE = 30.0  # requests a second to each app
WORKERS = 10  # each app's users in flight at most: a late answer skips a beat, never bunches
TIMEOUT = 10.0
SCRAPED_WITHIN = 30.0  # seconds for Prometheus to scrape the router once
DECIDE_WITHIN = 20.0  # seconds from the rollouts' start for every one of them to be decided
AFTER = 0.2  # seconds of traffic once every rollout is decided

FAIL_EVERY = 5  # search's canary fails one request in 5
DELAY = 0.3  # cart's canary answers this late
FAILS_FROM = 50  # stock's canary fails everything while it takes 50 % of the traffic or more
WOBBLE_EVERY = 2  # reviews' stable fails one request in 2 while the canary takes its first step
CANARY_FAULTS = {
    "search": {"fail_every": FAIL_EVERY},
    "cart": {"delay": DELAY},
    "stock": {"fail_from_share": FAILS_FROM},
}
STABLE_WOBBLE = {"reviews": {"fail_every": WOBBLE_EVERY}}

PROMOTE_WITHIN = 15.0  # seconds from the rollout's start for a good canary to be promoted
MAX_FAILED = 15  # search's users that may get an error from its canary, all told
MAX_SLOW = 40  # cart's users that may wait for its canary's 300 ms, all told


@dataclass(frozen=True)
class Served:
    app: str
    version: str
    status: int
    began: float
    ended: float


@dataclass(frozen=True)
class Event:
    app: str
    kind: str  # started, weight, promoted, rolled_back
    weight: int
    at: float


@dataclass
class Scenario:
    served: list[Served]
    events: list[Event]
    started: float  # when the rollouts started (router's clock: this machine's)
    wobble_ended: float  # when stable's wobble was mended

    def of(self, app: str, version: str | None = None) -> list[Served]:
        return [s for s in self.served if s.app == app and version in (None, s.version)]

    def timeline(self, app: str) -> list[Event]:
        return [e for e in self.events if e.app == app]

    def decision(self, app: str) -> Event | None:
        return next((e for e in self.timeline(app) if e.kind in ("promoted", "rolled_back")), None)

    def story(self, app: str) -> str:
        """The app's rollout as the router saw it, in seconds from its start."""
        steps = []
        for e in self.timeline(app):
            at = f"{e.at - self.started:.2f} s"
            if e.kind == "weight":
                steps.append(f"weight {e.weight} at {at}")
            elif e.kind != "started":
                steps.append(f"{e.kind.replace('_', ' ')} at {at}")
        canary = self.of(app, "canary")
        failed = sum(s.status >= 500 for s in canary)
        slow = sum(s.ended - s.began >= DELAY for s in canary)
        told = ", ".join(steps) or "no step at all"
        return (
            f"{app}: {told}; its canary answered {len(canary)} requests, {failed} with 5xx, "
            f"{slow} in {DELAY * 1000:.0f} ms or more"
        )


class Users:
    """RATE requests a second to each app through the router, from WORKERS threads per app:
    a beat whose workers are all busy is skipped, so a slow answer never makes a burst."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.answered = {app: threading.Event() for app in APPS}  # set at each app's first answer
        # One TLS context for every user's client (the router speaks plain HTTP, but httpx makes
        # a context per client otherwise, loading the CA bundle: about 35 ms each, 50 clients).
        self.tls = ssl.create_default_context()

    def start(self) -> None:
        for app in APPS:
            beats: queue.Queue[None] = queue.Queue()
            idle = threading.Semaphore(WORKERS)
            self.threads.append(threading.Thread(target=self._pace, args=(beats, idle)))
            for _ in range(WORKERS):
                self.threads.append(threading.Thread(target=self._work, args=(app, beats, idle)))
        for thread in self.threads:
            thread.start()

    def wait_flowing(self) -> None:
        """Until every app has answered a user (at most TIMEOUT: else the checks tell). Fifty
        threads each making an HTTP client can take a second on a busy machine: a rollout
        started before then could take its first step before any user saw it (and stable's
        wobble would go unseen)."""
        deadline = time.monotonic() + TIMEOUT
        for event in self.answered.values():
            event.wait(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=TIMEOUT + 5)

    def _pace(self, beats: queue.Queue[None], idle: threading.Semaphore) -> None:
        interval = 1.0 / RATE
        beat = time.monotonic()
        while not self.stopping.is_set():
            beat += interval
            late = time.monotonic() - beat
            if late > interval:  # the machine stalled: start again from now, no catching up
                beat = time.monotonic()
            elif late < 0:
                time.sleep(-late)
            if idle.acquire(blocking=False):
                beats.put(None)

    def _work(self, app: str, beats: queue.Queue[None], idle: threading.Semaphore) -> None:
        with httpx.Client(timeout=TIMEOUT, trust_env=False, verify=self.tls) as client:
            while not self.stopping.is_set():
                try:
                    beats.get(timeout=0.1)
                except queue.Empty:
                    continue
                try:
                    client.get(f"{self.url}/{app}/item")
                    self.answered[app].set()
                except httpx.HTTPError:
                    pass  # the router records what it answered; a lost answer is its to tell
                finally:
                    idle.release()


@contextmanager
def users(url: str) -> Iterator[Users]:
    running = Users(url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def wait_for_decisions(router: httpx.Client, stable: httpx.Client, until: float) -> float:
    """Until every rollout is decided (or `until`); mends stable's wobble once reviews' canary
    leaves its first step (at the latest, then). When the wobble was mended."""
    first_step: int | None = None
    mended: float | None = None
    while time.monotonic() < until:
        rollouts = router.get("/_rollouts").json()
        reviews = rollouts["reviews"]
        if mended is None:
            weight, progressing = reviews["weight"], reviews["state"] == "progressing"
            if first_step is None and weight > 0 and progressing:
                first_step = weight
            if not progressing or (first_step is not None and weight != first_step):
                stable.put("/_faults", json={}).raise_for_status()
                mended = time.time()
        if all(r["state"] in ("promoted", "rolled_back") for r in rollouts.values()):
            break
        time.sleep(0.05)
    if mended is None:
        stable.put("/_faults", json={}).raise_for_status()
        mended = time.time()
    return mended


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment) -> Scenario:
    lab = lab_module
    with (
        httpx.Client(base_url=lab.direct_url("router"), timeout=TIMEOUT) as router,
        httpx.Client(base_url=lab.direct_url("stable"), timeout=TIMEOUT) as stable,
        httpx.Client(base_url=lab.direct_url("canary"), timeout=TIMEOUT) as canary,
    ):
        canary.put("/_faults", json=CANARY_FAULTS).raise_for_status()
        # As in production, the monitoring is up before a rollout starts: Prometheus 2.x makes
        # its first scrape about 5 s after it starts. (Users come once it has: the machine
        # stays free for the labs beside this one meanwhile.)
        lab.prometheus.wait_scraped_after(time.time(), job="router", timeout=SCRAPED_WITHIN)
        with users(lab.url("router")) as running:
            running.wait_flowing()
            stable.put("/_faults", json=STABLE_WOBBLE).raise_for_status()
            started = time.time()
            for app in APPS:
                router.post(f"/_rollouts/{app}").raise_for_status()
            mended = wait_for_decisions(router, stable, time.monotonic() + DECIDE_WITHIN)
            time.sleep(AFTER)
        served = [Served(**s) for s in router.get("/_router/requests").json()]
        events = [Event(**e) for e in router.get("/_router/events").json()]
    return Scenario(served, events, started, mended)


# -- the checks ------------------------------------------------------------------------------
def _decided(scenario: Scenario, app: str, wanted: str, errors: list[str]) -> Event | None:
    decision = scenario.decision(app)
    if decision is None:
        errors.append(
            f"{app}: its canary was neither promoted nor rolled back within {DECIDE_WITHIN:.0f} s"
        )
    elif decision.kind != wanted:
        errors.append(f"{app}: its canary was {decision.kind.replace('_', ' ')}")
    return decision


def test_1_a_good_canary_is_promoted(scenario: Scenario) -> None:
    errors: list[str] = []
    decision = _decided(scenario, "prices", "promoted", errors)
    if decision is not None and decision.kind == "promoted":
        took = decision.at - scenario.started
        if took > PROMOTE_WITHIN:
            errors.append(f"prices: its canary was promoted {took:.1f} s after its rollout began")
        before = [e.weight for e in scenario.timeline("prices") if e.kind == "weight"]
        if not any(0 < w < 100 for w in before):
            errors.append("prices: its canary took all the traffic at once, no step in between")
    result = CheckResult(
        "a good canary is promoted",
        f"prices' canary, as good as stable, takes a share of the traffic, then more, and is "
        f"promoted within {PROMOTE_WITHIN:.0f} s",
        scenario.story("prices"),
        errors,
    )
    expect(result)


def test_2_a_failing_canary_is_rolled_back_early(scenario: Scenario) -> None:
    errors: list[str] = []
    _decided(scenario, "search", "rolled_back", errors)
    failed = [s for s in scenario.of("search", "canary") if s.status >= 500]
    if len(failed) > MAX_FAILED:
        errors.append(
            f"{len(failed)} of search's users got an error from its canary; at most "
            f"{MAX_FAILED} may, before it is rolled back"
        )
    result = CheckResult(
        "a failing canary is rolled back early",
        f"search's canary, which fails a request in {FAIL_EVERY}, is rolled back before more "
        f"than {MAX_FAILED} users got an error from it",
        scenario.story("search"),
        errors,
    )
    expect(result)


def test_3_a_slow_canary_is_rolled_back_early(scenario: Scenario) -> None:
    errors: list[str] = []
    _decided(scenario, "cart", "rolled_back", errors)
    slow = [s for s in scenario.of("cart", "canary") if s.ended - s.began >= DELAY]
    if len(slow) > MAX_SLOW:
        errors.append(
            f"{len(slow)} of cart's users waited {DELAY * 1000:.0f} ms or more for its canary; "
            f"at most {MAX_SLOW} may, before it is rolled back"
        )
    result = CheckResult(
        "a slow canary is rolled back early",
        f"cart's canary, {DELAY * 1000:.0f} ms slower than stable, is rolled back before more "
        f"than {MAX_SLOW} users waited for it",
        scenario.story("cart"),
        errors,
    )
    expect(result)


def test_4_a_canary_that_fails_only_under_load_is_caught(scenario: Scenario) -> None:
    errors: list[str] = []
    _decided(scenario, "stock", "rolled_back", errors)
    result = CheckResult(
        "a canary that fails only under load is caught",
        "stock's canary, fine on a quarter of the traffic and failing from half of it on, is "
        "rolled back, never promoted",
        scenario.story("stock"),
        errors,
    )
    expect(result)


def test_5_a_wobble_on_stable_does_not_roll_back_a_good_canary(scenario: Scenario) -> None:
    errors: list[str] = []
    _decided(scenario, "reviews", "promoted", errors)
    wobbled = [
        s for s in scenario.of("reviews", "stable")
        if s.status >= 500 and s.began <= scenario.wobble_ended
    ]  # fmt: skip
    if not wobbled:
        errors.append("stable never wobbled (report this: the scenario did not run as planned)")
    result = CheckResult(
        "a wobble on stable does not roll back a good canary",
        "reviews' canary, as good as stable, is promoted, though stable failed every other "
        "request while the canary took its first step",
        f"{scenario.story('reviews')}; stable failed {len(wobbled)} requests meanwhile",
        errors,
    )
    expect(result)
