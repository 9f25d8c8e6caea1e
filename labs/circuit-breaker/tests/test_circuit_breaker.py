"""Checks for the circuit-breaker lab.

One scenario runs once for the module: 20 shoppers load the home page (GET /recommendations)
and one more polls GET /profile; after a calm second the link from the frontend to the
recommender gets 3 s of latency for 5 s, then heals, and traffic goes on for 4 s. The numbered
checks judge what was recorded: the shoppers' history, and the arrival time of every call the
recommender received.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from harness import (
    CheckResult,
    Client,
    FaultEvent,
    Faults,
    History,
    LabEnvironment,
    Operation,
    Traffic,
    at_most,
    expect,
    latency_below,
)

SHOPPERS = 20
CALM = 1.0  # seconds of normal traffic before the outage
OUTAGE = 5.0  # seconds the recommender is slow
LATENCY_MS = 3000  # how slow it is
AFTER = 4.0  # seconds of traffic after it healed

OPENS_WITHIN = 1.5  # seconds into the outage by which the breaker must be open
FAST_ANSWER = 0.3  # p95 bound for /recommendations while open
PROBES_PER_SECOND = 1.0  # at most this many half-open probes per second (+ slack below)
PROBE_SLACK = 2
RECOVERS_WITHIN = 3.0  # seconds after the heal by which answers must be real again
RECOVERED_SHARE = 0.9  # a stray timeout may still earn a fallback; a stuck breaker gives 0 %
FAST_PROFILE = 1.0  # bound for every /profile answer, outage or not

USERS = ["ada", "grace", "linus", "barbara", "ken", "margaret"]
LINK = "frontend -> recommender"


@dataclass
class Scenario:
    """What the scenario recorded: the shoppers' history, the outage, the recommender's calls."""

    history: History
    faults: Faults
    outage: FaultEvent
    calls: list[float]  # arrival times at the recommender, on the checks' monotonic clock

    @property
    def healed(self) -> float:
        assert self.outage.end is not None
        return self.outage.end

    @property
    def open_from(self) -> float:
        """From here to the heal, a working breaker is open (or half-open with one probe)."""
        return self.outage.start + OPENS_WITHIN

    def recommendations(self, start: float, end: float | None = None) -> list[Operation]:
        return self.history.where(f="recommendations", started_after=start, started_before=end)


def shop(base: str) -> Callable[[Client], None]:
    """The workload: client 0 polls /profile, every other client loads the home page."""

    def workload(client: Client) -> None:
        if client.id == 0:
            with client.op("profile", "ada") as op:
                response = client.http.get(f"{base}/profile", params={"user": "ada"})
                if response.status_code != 200:
                    op.fail(f"HTTP {response.status_code}")
            client.sleep(0.1)
            return
        user = client.rng.choice(USERS)
        with client.op("recommendations", user) as op:
            response = client.http.get(f"{base}/recommendations", params={"user": user})
            if response.status_code == 200:
                op.ok(kind_of(response))
            else:
                op.fail(f"HTTP {response.status_code}")
        client.sleep(0.2)

    return workload


def kind_of(response: httpx.Response) -> str:
    """'real' for picks from the recommender, 'fallback' for the breaker's answer."""
    try:
        body = response.json()
    except ValueError:
        return "not JSON"
    if isinstance(body, dict) and body.get("fallback") is True:
        return "fallback"
    return "real"


def recommender_calls(lab: LabEnvironment) -> list[float]:
    """The recommender's record (wall clock), moved onto this process's monotonic clock."""
    wall = httpx.get(f"{lab.direct_url('recommender')}/calls", timeout=5.0).json()["calls"]
    offset = time.time() - time.monotonic()
    return [t - offset for t in wall]


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    faults = Faults(lab_module)
    traffic = Traffic(chaoslab_seed)
    run = traffic.start(
        shop(lab_module.url("frontend")),
        clients=SHOPPERS + 1,
        duration=CALM + OUTAGE + AFTER,
        timeout=10.0,
    )
    time.sleep(CALM)
    with faults.latency(LINK, LATENCY_MS) as outage:
        time.sleep(OUTAGE)
    history = run.wait(timeout=AFTER + 20.0)
    return Scenario(history, faults, outage, recommender_calls(lab_module))


def test_1_answers_fail_fast_while_open(scenario: Scenario) -> None:
    ops = scenario.recommendations(scenario.open_from, scenario.healed)
    result = latency_below(ops, FAST_ANSWER, q=95, what="/recommendations answer")
    result.expected += (
        f" when started {OPENS_WITHIN:g} s or more into the outage"
        f" (the recommender takes {LATENCY_MS} ms)"
    )
    expect(result, during=scenario.faults.timeline)


def test_2_recommender_gets_no_calls_while_open_but_probes(scenario: Scenario) -> None:
    start, end = scenario.open_from, scenario.healed
    arrived = [t for t in scenario.calls if start <= t <= end]
    window = end - start
    bound = int(window * PROBES_PER_SECOND) + PROBE_SLACK
    offsets = ", ".join(f"{t - scenario.outage.start:.2f}" for t in arrived[:20])
    more = f" and {len(arrived) - 20} more" if len(arrived) > 20 else ""
    result = at_most(
        len(arrived),
        bound,
        what="calls the recommender received while the breaker should be open",
        detail=[
            f"counted from {OPENS_WITHIN:g} s into the outage until it healed ({window:.1f} s);"
            f" one half-open probe per second allows {bound}",
            f"arrivals, in seconds into the outage: {offsets}{more}",
        ],
    )
    expect(result, during=scenario.faults.timeline)


def test_3_real_answers_again_after_recovery(scenario: Scenario) -> None:
    ops = scenario.recommendations(scenario.healed + RECOVERS_WITHIN)
    not_real = [op for op in ops if op.status != "ok" or op.result != "real"]
    real_share = 1 - len(not_real) / len(ops) if ops else 0.0
    errors = []
    if not ops:
        errors.append("no /recommendations started after the recovery window; expected some")
    elif real_share < RECOVERED_SHARE:
        errors = [op.describe() + (f" ({op.result})" if op.result else "") for op in not_real]
    result = CheckResult(
        f"real answers again within {RECOVERS_WITHIN:g} s after the recommender healed",
        f"at least {RECOVERED_SHARE:.0%} of the /recommendations started {RECOVERS_WITHIN:g} s"
        " or more after the heal answer with real picks (the breaker closed again)",
        f"{len(ops) - len(not_real)} of {len(ops)} ({real_share:.0%}) answered with real picks",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_4_profile_stays_fast_throughout(scenario: Scenario) -> None:
    ops = scenario.history.where(f="profile")
    result = latency_below(ops, FAST_PROFILE, what="/profile answer")
    result.expected += " (it never calls the recommender)"
    expect(result, during=scenario.faults.timeline)
