"""Checks for the circuit-breaker lab.

One scenario runs once for the module: 20 shoppers load the home page (GET /recommendations)
and one more polls GET /profile. First the recommender fails every 5th call (HTTP 500) for
1 s; then the link from the frontend to the recommender gets 2 s of latency for 3 s;
then it heals, and traffic goes on for 2 s; then the recommender fails every call (HTTP 500)
for 1 s. The numbered checks judge what was recorded: the
shoppers' history, every call that reached the recommender, and what it answered to each. What
the frontend says about itself (its `fallback` flag) is never evidence.
"""

import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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
STRAY = 1.0  # seconds of traffic while the recommender fails a few calls
STRAY_EVERY = 5  # it fails every 5th call then (HTTP 500): never 5 in a row, never 2
OUTAGE = 3.0  # seconds the recommender is slow
LATENCY_MS = 2000  # how slow it is: the second wave of calls is still waiting at the heal
AFTER = 2.0  # seconds of traffic after it healed
FAILING = 1.0  # seconds the recommender then fails every call, at once (HTTP 500)

# Seconds into the outage by which the breaker must be open: 5 timeouts of at most 0.5 s come
# back within about 0.7 s. The 2 s left until the heal always hold the first half-open probe
# (a second after the last failure, about 1.7 s in), so a burst let through in half-open is
# caught, and the second wave of calls of a breaker that never opens.
OPENS_WITHIN = 1.0
FAST_ANSWER = 0.3  # p95 bound for /recommendations while open
PROBES_PER_SECOND = 1.0  # at most this many half-open probes per second (+ slack below)
PROBE_SLACK = 2
# A breaker that opens on one stray failure is open almost all the stray phase, one that opens
# on 5 failures that are not consecutive (25 calls, about 0.5 s) about half of it; one
# that needs 5 in a row (or half of its recent calls failed) never opens.
REACHED_SHARE = 0.8
# Seconds after the heal by which answers must be real again: a probe that failed just before
# the heal is followed by the next one a second later.
RECOVERS_WITHIN = 1.5
RECOVERED_SHARE = 0.9  # a stray timeout may still earn a fallback; a stuck breaker gives 0 %
FAST_PROFILE = 1.0  # bound for every /profile answer, outage or not
# A breaker that counts error answers opens within a few calls of the first one (they come back
# in milliseconds); from this far into the failing phase, the recommender gets a probe a
# second, a breaker that lets a few through in half-open a few more, and one that takes an
# error answer for a sign of health every call.
FAIL_OPENS_WITHIN = 0.3
FAILING_REACHED_SHARE = 0.25  # of the requests started meanwhile, at most this share reach it
# Arrival times at the recommender are wall-clock seconds moved onto the checks' clock; this
# much slack covers the move when matching a call to the request it served.
CLOCK_SLACK = 0.05

USERS = ["ada", "grace", "linus", "barbara", "ken", "margaret"]
LINK = "frontend -> recommender"
FALLBACK = '200 {"items": [], "fallback": true}'


@dataclass
class Call:
    """One call that reached the recommender: when, for whom, and the picks it answered (None
    for a call it failed)."""

    at: float
    user: str
    items: list[str] | None


class Record:
    """The recommender's record, per user, sorted by arrival time."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = sorted(calls, key=lambda c: c.at)
        self._by_user: dict[str, list[Call]] = defaultdict(list)
        for call in self.calls:
            self._by_user[call.user].append(call)
        self._times = {user: [c.at for c in calls] for user, calls in self._by_user.items()}

    def during(self, op: Operation) -> list[Call]:
        """The calls for op's user that arrived while op was in flight."""
        times = self._times.get(op.value, [])
        end = op.end if op.end is not None else op.start
        lo = bisect.bisect_left(times, op.start - CLOCK_SLACK)
        hi = bisect.bisect_right(times, end + CLOCK_SLACK)
        return self._by_user[op.value][lo:hi]

    def between(self, start: float, end: float) -> list[Call]:
        return [c for c in self.calls if start <= c.at <= end]


@dataclass
class Scenario:
    """What the scenario recorded: the shoppers' history, the faults, the recommender's record."""

    history: History
    faults: Faults
    stray: FaultEvent
    outage: FaultEvent
    # The outage as the checks judge it: from when the latency was surely in place to when
    # the heal began. On a loaded machine the fault's own start and end, taken around the
    # calls to Toxiproxy, can lie a little outside it.
    slow_from: float
    slow_until: float
    calm_until: float  # when the recommender began to fail every call, at the earliest
    failing: FaultEvent
    record: Record

    @property
    def healed(self) -> float:
        assert self.outage.end is not None
        return self.outage.end

    @property
    def open_from(self) -> float:
        """From here to slow_until, a working breaker is open (or half-open, one probe)."""
        return self.slow_from + OPENS_WITHIN

    def recommendations(self, start: float | None, end: float | None = None) -> list[Operation]:
        return self.history.where(f="recommendations", started_after=start, started_before=end)

    def answer(self, op: Operation) -> str:
        """'real', 'fallback', or what is wrong with op's answer, judged against the record."""
        if op.status != "ok":
            return op.error or op.status
        body = op.result
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return f"200 without an items list: {str(body)[:80]}"
        items = body["items"]
        if not items:
            return "fallback"
        if any(call.items == items for call in self.record.during(op)):
            return "real"
        return f"picks {items} that the recommender did not send during this request"


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
                op.ok(body_of(response))
            else:
                op.fail(f"HTTP {response.status_code} {response.text[:60]}".strip())
        client.sleep(0.2)

    return workload


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return f"not JSON: {response.text[:60]}"


def recommender_record(lab: LabEnvironment) -> Record:
    """The recommender's record of every /recommend it received, on this process's clock."""
    offset = time.time() - time.monotonic()
    body = httpx.get(f"{lab.direct_url('recommender')}/calls", timeout=5.0).json()
    return Record(
        [Call(float(c["time"]) - offset, str(c["user"]), c["items"]) for c in body["calls"]]
    )


@contextmanager
def stray_failures(faults: Faults, lab: LabEnvironment, every: int) -> Iterator[FaultEvent]:
    """The recommender fails every n-th call (HTTP 500) inside the block; on the timeline."""
    which = "every call" if every == 1 else f"every {every}th call"
    url = f"{lab.direct_url('recommender')}/stray"
    try:
        httpx.post(url, json={"every": every}, timeout=5.0).raise_for_status()
        # The event spans only the time the failures are surely on: a control call that is
        # slow on a loaded machine must not stretch it over healthy calls.
        event = faults.timeline.open(f"recommender fails {which} (HTTP 500)")
        try:
            yield event
        finally:
            event.end = time.monotonic()
    finally:
        httpx.post(url, json={"every": 0}, timeout=5.0).raise_for_status()


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    faults = Faults(lab_module)
    traffic = Traffic(chaoslab_seed)
    run = traffic.start(
        shop(lab_module.url("frontend")),
        clients=SHOPPERS + 1,
        duration=STRAY + OUTAGE + AFTER + 10.0,  # a bound: stop() below ends the shopping
        timeout=10.0,
    )
    with stray_failures(faults, lab_module, STRAY_EVERY) as stray:
        time.sleep(STRAY)
    with faults.latency(LINK, LATENCY_MS) as outage:
        slow_from = time.monotonic()
        time.sleep(OUTAGE)
        slow_until = time.monotonic()
    time.sleep(AFTER)
    calm_until = time.monotonic()
    with stray_failures(faults, lab_module, 1) as failing:
        time.sleep(FAILING)
    history = run.stop()  # the shoppers finish the request in hand, not their pause
    record = recommender_record(lab_module)
    return Scenario(
        history, faults, stray, outage, slow_from, slow_until, calm_until, failing, record
    )


def test_1_answers_fail_fast_while_open(scenario: Scenario) -> None:
    ops = scenario.recommendations(scenario.open_from, scenario.slow_until)
    result = latency_below(ops, FAST_ANSWER, q=95, what="/recommendations answer")
    result.expected += (
        f" when started {OPENS_WITHIN:g} s or more into the outage"
        f" (the recommender takes {LATENCY_MS} ms)"
    )
    expect(result, during=scenario.faults.timeline)


def test_2_every_answer_is_picks_or_the_fallback(scenario: Scenario) -> None:
    ops = scenario.recommendations(None)  # the whole run
    wrong = [(op, kind) for op in ops if (kind := scenario.answer(op)) not in ("real", "fallback")]
    fallbacks = sum(1 for op in ops if scenario.answer(op) == "fallback")
    errors = []
    if not ops:
        errors.append("no /recommendations completed; expected some")
    for op, kind in wrong:
        at = op.start - scenario.stray.start
        errors.append(
            f"recommendations {op.value!r} by client {op.client}, {at:.2f} s into the run,"
            f" answered {kind}; expected the recommender's picks or the fallback {FALLBACK}"
        )
    result = CheckResult(
        "every /recommendations answer is the recommender's picks or the fallback",
        "every answer 200: the picks the recommender sent for this request, or the empty"
        f" shelf {FALLBACK} (never an error, never picks it did not send)",
        f"{len(ops) - len(wrong)} of {len(ops)} answers were picks or the fallback"
        f" ({fallbacks} fallbacks)",
        errors,
    )
    expect(result.judging(ops), during=scenario.faults.timeline)


def test_3_recommender_gets_no_calls_while_open_but_probes(scenario: Scenario) -> None:
    start, end = scenario.open_from, scenario.slow_until
    arrived = [c.at for c in scenario.record.between(start, end)]
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
    result.window = (start, end)
    expect(result, during=scenario.faults.timeline)


def test_4_a_stray_failure_does_not_open_the_breaker(scenario: Scenario) -> None:
    assert scenario.stray.end is not None
    ops = scenario.recommendations(scenario.stray.start, scenario.stray.end)
    done = [op for op in ops if op.end is not None]
    missed = [op for op in done if not scenario.record.during(op)]
    share = 1 - len(missed) / len(done) if done else 0.0
    errors = []
    if not done:
        errors.append("no /recommendations completed while the recommender failed at random")
    elif share < REACHED_SHARE:
        first = missed[0].start - scenario.stray.start
        errors.append(
            f"{len(missed)} /recommendations answered without calling the recommender, the"
            f" first {first:.2f} s into the run; expected at most"
            f" {1 - REACHED_SHARE:.0%} (the recommender was up, failing 1 call in"
            f" {STRAY_EVERY})"
        )
        errors += [f"{op.describe()}: {scenario.answer(op)}" for op in missed]
    result = CheckResult(
        "a stray failure does not open the breaker",
        f"at least {REACHED_SHARE:.0%} of the /recommendations in the first {STRAY:g} s, while"
        f" the recommender failed every {STRAY_EVERY}th call (HTTP 500), reach the recommender",
        f"{len(done) - len(missed)} of {len(done)} ({share:.0%}) reached it",
        errors,
    )
    expect(result.judging(done), during=scenario.faults.timeline)


def test_5_real_answers_again_after_recovery(scenario: Scenario) -> None:
    ops = [
        op
        for op in scenario.recommendations(scenario.healed + RECOVERS_WITHIN)
        if op.end is not None and op.end <= scenario.calm_until  # before every call failed
    ]
    not_real = [(op, kind) for op in ops if (kind := scenario.answer(op)) != "real"]
    real_share = 1 - len(not_real) / len(ops) if ops else 0.0
    calls = scenario.record.between(scenario.healed + RECOVERS_WITHIN, scenario.calm_until)
    errors = []
    if not ops:
        errors.append("no /recommendations started after the recovery window; expected some")
    elif real_share < RECOVERED_SHARE:
        errors = [f"{op.describe()}: {kind}" for op, kind in not_real]
    result = CheckResult(
        f"real answers again within {RECOVERS_WITHIN:g} s after the recommender healed",
        f"at least {RECOVERED_SHARE:.0%} of the /recommendations started {RECOVERS_WITHIN:g} s"
        " or more after the heal answer with the picks the recommender sent for them (the"
        " breaker closed again)",
        f"{len(ops) - len(not_real)} of {len(ops)} ({real_share:.0%}) answered with its picks;"
        f" the recommender received {len(calls)} calls in that time",
        errors,
    )
    expect(result.judging(ops), during=scenario.faults.timeline)


def test_6_profile_stays_fast_throughout(scenario: Scenario) -> None:
    ops = scenario.history.where(f="profile")
    result = latency_below(ops, FAST_PROFILE, what="/profile answer")
    result.expected += " (it never calls the recommender)"
    expect(result, during=scenario.faults.timeline)


def test_7_error_answers_open_the_breaker(scenario: Scenario) -> None:
    assert scenario.failing.end is not None
    start, end = scenario.failing.start + FAIL_OPENS_WITHIN, scenario.failing.end
    ops = scenario.recommendations(start, end)
    arrived = scenario.record.between(start, end)
    share = len(arrived) / len(ops) if ops else 0.0
    errors = []
    if not ops:
        errors.append("no /recommendations started while the recommender failed every call")
    elif share > FAILING_REACHED_SHARE:
        errors.append(
            f"the recommender received {len(arrived)} calls for the {len(ops)}"
            f" /recommendations started from {FAIL_OPENS_WITHIN:g} s into the"
            f" {FAILING:g} s in which it answered every call 500 ({share:.0%}); expected at"
            f" most {FAILING_REACHED_SHARE:.0%}. An error answer is a failure even when it"
            " comes back fast: it must count towards opening the breaker"
        )
    result = CheckResult(
        "error answers open the breaker",
        f"while the recommender answers every call 500, from {FAIL_OPENS_WITHIN:g} s in, it"
        f" receives calls for at most {FAILING_REACHED_SHARE:.0%} of the /recommendations"
        " (the half-open probes): a fast error counts as a failure like a timeout",
        f"{len(arrived)} calls for {len(ops)} /recommendations ({share:.0%})",
        errors,
    )
    result.window = (start, end)
    expect(result.judging(ops), during=scenario.faults.timeline)
