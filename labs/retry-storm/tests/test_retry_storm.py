"""The checks of retry-storm: how the gateway retries, judged from what pricing received.

One scenario runs once for the module, in four parts, against one gateway process (one retry
budget for the whole run). Each part's fault in pricing hits only its own call ids, so the
lost answers run alongside the probe and the unknown items:

The probe: 16 quotes arrive together, and pricing refuses every /price of theirs (503 after
100 ms); once they are answered, or after 1.6 s, it works again. Pricing's record of when it
refused each attempt and when the next one arrived shows how long the gateway waited before
each retry (checks 2 and 3).

Lost answers: as soon as the probe's quotes have gone out, 4 quotes start together; pricing
holds the first attempt of each for 3.5 s, and answers any retry at once (check 4). Only the
outage waits for them: it starts once they are answered, or 2.2 s after they started (a
gateway without timeouts leaves them hanging until the callers give up, 3.3 s).

Unknown items: then 3 quotes for items pricing does not sell; pricing answers 404 (check 5).

The outage: then 20 shoppers ask for quotes (one every 1 to 2 s each). As they start, pricing's
answers stop reaching the gateway for 1 s (a one-way partition: requests get through, answers
do not; its heal closes every connection open through it). Pricing restarts meanwhile: it
refuses every request (503 after 100 ms) from the start of the partition until 0.6 s after it
heals; then traffic goes on for 1.8 s.
Pricing collapses once more than 100 requests reach it within a second, and works again only
under 50 a second (services/pricing.py).

Every retry in the run counts against the budget (check 6); the outage judges the rest.
"""

import contextlib
import itertools
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from harness import (
    CheckResult,
    Client,
    FaultEvent,
    Faults,
    History,
    HttpControl,
    LabEnvironment,
    Operation,
    Traffic,
    TrafficRun,
    expect,
    latency_below,
)

# -- unknown items ---------------------------------------------------------------------------------
UNKNOWN_ITEMS = ["samovar", "teapot", "cezve"]  # pricing does not sell them: it answers 404

# -- lost answers ----------------------------------------------------------------------------------
LOST_CALLS = 4
# Seconds pricing holds the first attempt of each: longer than the shoppers wait, so that
# waiting for it fails check 9 as well as check 4. The scenario does not wait for these calls:
# they run alongside the probe (their fault hits only `lost-*` call ids, the probe's only
# `probe-*`), and are collected at the end.
LOST_HOLD = 3.5
# Seconds from their start the outage waits for the lost answers, at most (it starts at once
# when they are all answered, as with any gateway that times out its attempts). The outage's
# partition closes every connection through the link when it heals, the held ones too; healing
# at least LOST_WAIT + PARTITION = 3.2 s after the lost answers started, it cannot let a gateway
# without timeouts answer them within check 9's 3 s (nor in time for check 4).
LOST_WAIT = 2.2

# -- the probe -------------------------------------------------------------------------------------
# 16 calls: with fewer, the upper waits of full jitter and of a fixed ceiling overlap too
# often for check 2 to tell them apart every run; their 48 retries fit the budget's reserve.
PROBE_CALLS = 16
# Seconds pricing takes to refuse a probe request: short, so that 4 attempts and the waits
# between them fit well in the 2 s deadline (a deadline that cut the last attempts short would
# hide the longest waits from check 2).
PROBE_REFUSAL = 0.1
# Seconds pricing refuses everything, at most: time for 4 attempts and the waits between them
# (1.5 s at most with full jitter); an attempt after it gets a price, and the wait before it
# still counts.
PROBE_HOLD = 1.6

# -- the outage ------------------------------------------------------------------------------------
SHOPPERS = 20
THINK = (1.0, 2.0)  # seconds a shopper waits between quotes
PARTITION = 1.0  # seconds; longer than a per-attempt timeout, so attempts are lost in it
RESTART_REFUSAL_MS = 100  # pricing refuses everything while it restarts ...
RESTART = 0.6  # ... until this many seconds after the partition healed
# Seconds of traffic after the restart: the shoppers' second quotes (1 to 2 s after their first
# failed) start in it, so check 8 sees a dozen or more, even from a gateway without a budget.
AFTER = 1.8

# -- the contract ----------------------------------------------------------------------------------
# Requests a second pricing can take (CAPACITY in services/pricing.py): more than the probe's
# 64 requests and than 20 shoppers trying 4 times each (about 65 at the heal), so that only a
# storm collapses it.
CAPACITY = 100
MAX_ATTEMPTS = 4  # per call, retries included
DEADLINE = 2.0  # seconds the gateway has to answer a quote
DEADLINE_MARGIN = 1.0  # for the network and a busy machine
# Seconds a shopper waits for an answer before giving up: past check 9's bound, so that a quote
# the shopper gave up on was late anyway.
CLIENT_TIMEOUT = 3.3
MIN_WAIT = 0.05  # seconds: the mean wait before a retry, at least
# The longest quarter of the waits before attempt 4 over that before attempt 2, at least: full
# jitter gives about 3.5 (its ceiling is 4 times higher), the same ceiling at every retry about
# 1; with 16 calls either falls beyond 1.8 less than once in 10,000 runs (a simulation).
GROWTH = 1.8
# The coefficient of variation of the waits before one attempt number, at least, before the
# attempt number where it is largest: full jitter gives about 0.55 (0.34 or more in all but
# 1 in 10,000 runs, a simulation), decorrelated jitter 0.31 or more, equal jitter (half fixed,
# half random) about 0.19, a fixed backoff under 0.07.
MIN_SPREAD = 0.3
BUDGET_RATIO = 0.25  # retries per call the budget may add (the README asks for 0.2) ...
BUDGET_RESERVE = 60  # ... plus this reserve, over the whole run
RECOVERS_WITHIN = 0.3  # seconds after pricing is back to full capacity
RECOVERED_SHARE = 0.9

ITEMS = ["kettle", "grinder", "scale", "moka-pot", "tamper", "filter-papers"]


@dataclass
class Scenario:
    """What the scenario recorded: the shoppers' history, the faults, and pricing's record."""

    history: History
    faults: Faults
    lost: FaultEvent
    probe: FaultEvent
    outage: FaultEvent
    restart: FaultEvent
    attempts: dict[str, list[float]]  # call id -> arrival times at pricing, monotonic seconds
    answers: dict[str, list[float | None]]  # ... and when pricing's answer to each one left
    arrivals: list[float]  # every POST /price, monotonic seconds

    @property
    def healed(self) -> float:
        assert self.outage.end is not None
        return self.outage.end

    @property
    def restarted(self) -> float:
        assert self.restart.end is not None
        return self.restart.end

    def quotes(self, started_after: float | None = None) -> list[Operation]:
        return self.history.where(f="quote", started_after=started_after)


# -- traffic ---------------------------------------------------------------------------------------
def shopper(base: str) -> Callable[[Client], None]:
    """A shopper: a quote for a random item, then a pause."""
    numbers = itertools.count(1)

    def workload(client: Client) -> None:
        call_id = f"q-{next(numbers)}"
        with client.op("quote", call_id) as op:
            item = client.rng.choice(ITEMS)
            response = client.http.post(f"{base}/quote", json={"call_id": call_id, "item": item})
            if response.status_code != 200:
                op.fail(f"HTTP {response.status_code}", response.status_code)
        client.sleep(client.rng.uniform(*THINK))

    return workload


def together(
    traffic: Traffic,
    base: str,
    f: str,
    items: Sequence[str],
    done: threading.Semaphore | None = None,
    sent: threading.Event | None = None,
) -> TrafficRun:
    """One quote per item, all sent at the same moment; call ids `<f>-1`, `<f>-2`, ...
    `done` is released once per answered quote, `sent` set as they go out."""
    start = threading.Barrier(len(items))

    def workload(client: Client) -> None:
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=5.0)
            if sent is not None:
                sent.set()
            call_id = f"{f}-{client.id + 1}"
            with client.op(f, call_id) as op:
                body = {"call_id": call_id, "item": items[client.id]}
                response = client.http.post(f"{base}/quote", json=body)
                if response.status_code == 200:
                    op.ok(response.status_code)
                else:
                    op.fail(f"HTTP {response.status_code}", response.status_code)
        finally:
            if done is not None:
                done.release()

    return traffic.start(workload, clients=len(items), iterations=1, timeout=CLIENT_TIMEOUT)


def holding_lost_answers(faults: Faults) -> contextlib.AbstractContextManager[FaultEvent]:
    """Pricing holds the first attempt of each lost-answers call for LOST_HOLD, and only
    those: other calls, and the retries of these, go through."""
    return faults.http(
        "pricing",
        delay_ms=int(LOST_HOLD * 1000),
        first=LOST_CALLS,
        path="/price",
        where={"call_id": "lost-*"},
    )


def run_probe(
    faults: Faults, traffic: Traffic, base: str, meanwhile: Callable[[], object]
) -> tuple[FaultEvent, TrafficRun]:
    """Quotes that start together while pricing refuses everything of theirs, and `meanwhile`
    called as soon as they have gone out; returns the fault, and the calls, which a gateway
    that never gives up leaves hanging until the checks' timeout."""
    finished, sent = threading.Semaphore(0), threading.Event()
    refusing = faults.http(
        "pricing",
        status=503,
        delay_ms=int(PROBE_REFUSAL * 1000),
        path="/price",
        where={"call_id": "probe-*"},
    )
    with refusing as event:
        run = together(traffic, base, "probe", ["kettle"] * PROBE_CALLS, done=finished, sent=sent)
        hold_until = time.monotonic() + PROBE_HOLD
        sent.wait(timeout=PROBE_HOLD)
        meanwhile()
        for _ in range(PROBE_CALLS):
            if not finished.acquire(timeout=max(0.0, hold_until - time.monotonic())):
                break
    return event, run


def pricing_record(
    lab: LabEnvironment,
) -> tuple[dict[str, list[float]], dict[str, list[float | None]], list[float]]:
    """Pricing's record of POST /price, on this process's monotonic clock: per call id, when
    each attempt arrived and when pricing's answer to it left (None: it never answered)."""
    offset = time.time() - time.monotonic()
    by_call: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    arrivals = []
    for request in HttpControl(lab, "pricing").received():
        if request.get("path") != "/price":
            continue
        at = float(str(request["time"])) - offset
        answered = request.get("answered")
        left = float(str(answered)) - offset if answered is not None else None
        arrivals.append(at)
        body = request.get("body")
        if isinstance(body, dict) and body.get("call_id"):
            by_call[str(body["call_id"])].append((at, left))
    ordered = {call_id: sorted(tries, key=lambda t: t[0]) for call_id, tries in by_call.items()}
    attempts = {call_id: [at for at, _ in tries] for call_id, tries in ordered.items()}
    answers = {call_id: [left for _, left in tries] for call_id, tries in ordered.items()}
    return attempts, answers, sorted(arrivals)


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Iterator[Scenario]:
    faults = Faults(lab_module)
    traffic = Traffic(chaoslab_seed)
    base = lab_module.url("gateway")
    # The lost answers run alongside the probe and the unknown items; the outage waits for
    # them only until LOST_WAIT after they started (a gateway without timeouts leaves them
    # hanging until the callers give up). They spend 4 retries of the budget, the probe 48.
    # They start right after the probe's calls went out, so that their retries (after a
    # timeout) come after the probe's first ones: a budget that starts empty has then spent on
    # the probe what the calls earned, and has nothing left for them.
    lost_done = threading.Semaphore(0)
    lost_runs: list[TrafficRun] = []
    lost_started: list[float] = []

    def start_lost_answers() -> None:
        lost_started.append(time.monotonic())
        lost_runs.append(together(traffic, base, "lost", ITEMS[:LOST_CALLS], done=lost_done))

    with holding_lost_answers(faults) as lost:
        probe, probe_run = run_probe(faults, traffic, base, meanwhile=start_lost_answers)
        together(traffic, base, "unknown", UNKNOWN_ITEMS).wait(timeout=CLIENT_TIMEOUT + 5.0)
        wait_until = lost_started[0] + LOST_WAIT
        for _ in range(LOST_CALLS):
            if not lost_done.acquire(timeout=max(0.0, wait_until - time.monotonic())):
                break

        restarting = faults.http("pricing", status=503, delay_ms=RESTART_REFUSAL_MS, path="/price")
        # Pricing restarted during the partition and still refuses when the answers get through
        # again: the gateway's tries after the heal meet its refusals. The shoppers' first
        # quotes meet the partition; their next ones (1 to 2 s after the first failed) the
        # recovery.
        with restarting as restart:
            with faults.partition(["pricing"], ["gateway"], one_way=True) as outage:
                run = traffic.start(shopper(base), clients=SHOPPERS, timeout=CLIENT_TIMEOUT)
                time.sleep(PARTITION)
            time.sleep(RESTART)
        time.sleep(AFTER)
        history = run.stop()  # the shoppers finish the quote in hand
        lost_runs[0].wait(timeout=CLIENT_TIMEOUT + 5.0)  # long done: the callers give up
    probe_run.wait(timeout=CLIENT_TIMEOUT + 5.0)
    attempts, answers, arrivals = pricing_record(lab_module)
    yield Scenario(history, faults, lost, probe, outage, restart, attempts, answers, arrivals)


# -- measures --------------------------------------------------------------------------------------
def probe_waits(scenario: Scenario) -> dict[int, dict[str, float]]:
    """For attempt number n >= 2 of each probe call: how long the gateway waited before it.

    That is the time from pricing's refusal of attempt n - 1 leaving to attempt n arriving (on
    a busy machine the refusal can leave well after the PROBE_REFUSAL it was asked to take);
    only attempts refused by the probe count.
    """
    assert scenario.probe.end is not None
    waits: dict[int, dict[str, float]] = defaultdict(dict)
    for call_id, times in scenario.attempts.items():
        if not call_id.startswith("probe-"):
            continue
        answers = scenario.answers[call_id]
        for n in range(2, len(times) + 1):
            previous, refused = times[n - 2], answers[n - 2]
            if scenario.probe.start <= previous < scenario.probe.end:
                sent = refused if refused is not None else previous + PROBE_REFUSAL
                waits[n][call_id] = times[n - 1] - sent
    return dict(sorted(waits.items()))


def longest(values: Sequence[float]) -> float:
    """The mean of the longest quarter: how long the longer waits are, robust to one slow retry."""
    top = sorted(values)[-max(1, len(values) // 4) :]
    return statistics.mean(top)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def peak_second(times: list[float]) -> tuple[int, float]:
    """The most arrivals within any one second, and when that second starts."""
    best, best_start, first = 0, times[0] if times else 0.0, 0
    for last, t in enumerate(times):
        while t - times[first] > 1.0:
            first += 1
        if last - first + 1 > best:
            best, best_start = last - first + 1, times[first]
    return best, best_start


# -- the checks ------------------------------------------------------------------------------------
def test_1_attempts_per_call_are_bounded(scenario: Scenario) -> None:
    counts = {call_id: len(times) for call_id, times in scenario.attempts.items()}
    over = sorted((c for c in counts if counts[c] > MAX_ATTEMPTS), key=lambda c: -counts[c])
    errors = [
        f"call {c} reached pricing {counts[c]} times; expected at most {MAX_ATTEMPTS}" for c in over
    ]
    if not counts:
        errors.append(
            "pricing received no request with a call id; the gateway must send pricing the"
            " body of /quote unchanged"
        )
    worst = max(counts.values(), default=0)
    result = CheckResult(
        f"at most {MAX_ATTEMPTS} attempts per call",
        f"each call reaches pricing at most {MAX_ATTEMPTS} times (the first try and retries)",
        f"{len(over)} of {len(counts)} calls went over; the worst made {worst} attempts"
        if over
        else f"at most {worst} attempts per call, over {len(counts)} calls",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_2_retries_back_off(scenario: Scenario) -> None:
    waits = probe_waits(scenario)
    means = {n: statistics.mean(w.values()) for n, w in waits.items()}
    shown = ", ".join(f"before attempt {n}: {ms(m)}" for n, m in list(means.items())[:3])
    second, fourth = list(waits.get(2, {}).values()), list(waits.get(4, {}).values())
    errors = []
    if len(second) < PROBE_CALLS // 2 or len(fourth) < PROBE_CALLS // 2:
        errors.append(
            f"{len(second)} probe calls made a 2nd attempt and {len(fourth)} a 4th; expected most"
            f" of the {PROBE_CALLS} to make 4 attempts while pricing refused everything (and the"
            f" retry budget to allow their {3 * PROBE_CALLS} retries)"
        )
    else:
        overall = statistics.mean(w for by_call in waits.values() for w in by_call.values())
        if overall < MIN_WAIT:
            errors.append(
                f"the gateway retried {ms(overall)} after a refusal on average; expected it to"
                f" wait {ms(MIN_WAIT)} or more"
            )
        growth = longest(fourth) / max(longest(second), 1e-6)
        if growth < GROWTH:
            errors.append(
                f"the longest quarter of the waits before the 4th attempt (mean"
                f" {ms(longest(fourth))}) was {growth:.1f} times that before the 2nd"
                f" ({ms(longest(second))}); expected at least {GROWTH:g} times (the ceiling of"
                " the wait doubles at each retry)"
            )
    result = CheckResult(
        "retries back off",
        f"after a refusal the gateway waits ({ms(MIN_WAIT)} or more on average), and longer"
        " after each failed retry",
        f"mean waits of the {PROBE_CALLS} probe calls {shown or 'none'}"
        + (
            f"; longest quarter before attempt 2: {ms(longest(second))}, before attempt 4:"
            f" {ms(longest(fourth))}"
            if second and fourth
            else ""
        ),
        errors,
    )
    expect(result, during=[scenario.probe])


def test_3_retries_are_jittered(scenario: Scenario) -> None:
    enough = PROBE_CALLS // 2  # calls that made attempt n, for its waits to say anything
    waits = {n: list(w.values()) for n, w in probe_waits(scenario).items() if len(w) >= enough}
    spreads = {
        n: statistics.pstdev(w) / statistics.mean(w) if statistics.mean(w) > 0 else 0.0
        for n, w in waits.items()
    }
    shown = (
        ", ".join(
            f"before attempt {n}: {ms(min(w))} to {ms(max(w))} (variation {spreads[n]:.2f})"
            for n, w in list(waits.items())[:3]
        )
        or "no retries to compare"
    )
    spread = max(spreads.values(), default=0.0)
    overall = statistics.mean(x for w in waits.values() for x in w) if waits else 0.0
    errors = []
    if not waits:
        errors.append(
            f"no attempt number was retried by {enough} or more of the {PROBE_CALLS} probe"
            " calls; expected them all to retry while pricing refused everything"
        )
    elif overall < MIN_WAIT:
        errors.append(
            f"the calls retried {ms(overall)} after a refusal on average, all together; expected"
            f" each to wait a random time ({ms(MIN_WAIT)} or more on average)"
        )
    elif spread < MIN_SPREAD:
        errors.append(
            f"calls that failed together waited nearly the same time before their next attempt"
            f" (coefficient of variation at most {spread:.2f}); expected at least {MIN_SPREAD:g}"
            " before some attempt, so that they come back at different moments"
        )
    result = CheckResult(
        "retries are jittered",
        f"the {PROBE_CALLS} probe calls, refused at the same moment, wait random times before"
        f" retrying (coefficient of variation {MIN_SPREAD:g} or more before some attempt)",
        shown,
        errors,
    )
    expect(result, during=[scenario.probe])


def test_4_a_lost_answer_is_retried_in_time(scenario: Scenario) -> None:
    ops = scenario.history.where(f="lost")
    errors = []
    for op in ops:
        tries = len(scenario.attempts.get(str(op.value), []))
        if op.status != "ok":
            errors.append(
                f"call {op.value} got no price ({op.error}) after {ms(op.latency or 0)}; pricing"
                f" saw {tries} attempt(s); expected a retry that got a price within"
                f" {DEADLINE:g} s"
            )
        elif (op.latency or 0) > DEADLINE:
            errors.append(
                f"call {op.value} got its price after {ms(op.latency or 0)} (pricing saw {tries}"
                f" attempt(s)); expected it within {DEADLINE:g} s: an attempt that gets no answer"
                " must time out and be retried"
            )
        elif tries < 2:
            errors.append(
                f"call {op.value} got a price after {ms(op.latency or 0)} but pricing saw"
                f" {tries} attempt(s); expected the held first attempt to be retried"
            )
    if len(ops) != LOST_CALLS:
        errors.append(f"{len(ops)} calls were made; expected {LOST_CALLS}")
    got = sum(1 for op in ops if op.status == "ok" and (op.latency or 0) <= DEADLINE)
    result = CheckResult(
        "a lost answer is retried in time",
        f"each of the {LOST_CALLS} calls whose first attempt pricing held for {LOST_HOLD:g} s"
        f" gets a price from a retry within {DEADLINE:g} s",
        f"{got} of {len(ops)} got a price in time",
        errors,
    )
    expect(result, during=[scenario.lost])


def test_5_an_unknown_item_is_not_retried(scenario: Scenario) -> None:
    ops = scenario.history.where(f="unknown")
    errors = []
    for op in ops:
        tries = len(scenario.attempts.get(str(op.value), []))
        status = op.result if isinstance(op.result, int) else None
        if tries != 1:
            errors.append(
                f"call {op.value} reached pricing {tries} times; expected once (pricing answered"
                " 404: a request it refuses will be refused again)"
            )
        if status is None or not 400 <= status < 500:
            answer = f"HTTP {status}" if status is not None else op.error
            errors.append(
                f"call {op.value} was answered {answer}; expected pricing's 4xx (404) passed on"
            )
    if len(ops) != len(UNKNOWN_ITEMS):
        errors.append(f"{len(ops)} calls were made; expected {len(UNKNOWN_ITEMS)}")
    result = CheckResult(
        "an unknown item is not retried",
        f"the {len(UNKNOWN_ITEMS)} quotes for items pricing does not sell reach it once each and"
        " are answered 4xx",
        ", ".join(
            f"{op.value}: {len(scenario.attempts.get(str(op.value), []))} attempt(s),"
            f" {'HTTP ' + str(op.result) if isinstance(op.result, int) else op.error}"
            for op in ops
        )
        or "no calls",
        errors,
    )
    expect(result)


def test_6_retries_stay_within_the_budget(scenario: Scenario) -> None:
    calls = len(scenario.history)
    retries = {c: len(t) - 1 for c, t in scenario.attempts.items() if len(t) > 1}
    total = sum(retries.values())
    bound = BUDGET_RESERVE + BUDGET_RATIO * calls
    by_part: dict[str, int] = defaultdict(int)
    for call_id, n in retries.items():
        by_part[call_id.split("-")[0]] += n
    parts = {
        "lost": "lost answers",
        "probe": "the probe",
        "unknown": "unknown items",
        "q": "the outage",
    }
    shown = ", ".join(f"{by_part[p]} in {name}" for p, name in parts.items())
    errors = []
    if total > bound:
        errors.append(
            f"the gateway sent pricing {total} retries for {calls} calls ({shown}); expected at"
            f" most {bound:.0f} ({BUDGET_RESERVE} in reserve plus {BUDGET_RATIO:.0%} of the"
            " calls): a pricing that keeps failing must get little more than one try per call"
        )
    result = CheckResult(
        "retries stay within the budget",
        f"at most {BUDGET_RESERVE} retries plus {BUDGET_RATIO:.0%} of the calls, over the whole"
        " run",
        f"{total} retries for {calls} calls ({shown})",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_7_pricing_is_not_flooded_while_it_recovers(scenario: Scenario) -> None:
    end = max((op.end for op in scenario.quotes() if op.end is not None), default=scenario.healed)
    recovering = [t for t in scenario.arrivals if scenario.healed <= t <= end]
    peak, at = peak_second(recovering)
    errors = []
    if peak > CAPACITY:
        errors.append(
            f"pricing received {peak} requests in the second from {at - scenario.healed:.1f} s"
            f" after the partition healed; it can take {CAPACITY} a second and collapses above"
        )
    result = CheckResult(
        "pricing is not flooded while it recovers",
        f"at most {CAPACITY} requests to pricing in any second, from the heal until the end",
        f"peak {peak} requests in a second; {len(recovering)} requests in"
        f" {end - scenario.healed:.1f} s",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_8_quotes_succeed_again_soon_after_recovery(scenario: Scenario) -> None:
    since = scenario.restarted + RECOVERS_WITHIN
    ops = scenario.quotes(started_after=since)
    failed = [op for op in ops if op.status != "ok"]
    succeeded = len(ops) - len(failed)
    errors = [op.describe() for op in failed] if succeeded < RECOVERED_SHARE * len(ops) else []
    if len(ops) < 5:
        errors.append(f"only {len(ops)} quotes started in the recovery window; expected 5 or more")
    result = CheckResult(
        "quotes succeed again soon after recovery",
        f"at least {RECOVERED_SHARE:.0%} of the quotes that start {RECOVERS_WITHIN:g} s or more"
        " after pricing is back to full capacity get a price",
        f"{succeeded} of {len(ops)} got a price",
        errors,
    )
    expect(result.judging(ops), during=scenario.faults.timeline)


def test_9_every_quote_is_answered_within_its_deadline(scenario: Scenario) -> None:
    ops = scenario.history.where()
    bound = DEADLINE + DEADLINE_MARGIN
    result = latency_below(ops, bound, what="/quote answer")
    if not result.valid:
        late = [op for op in ops if op.latency is not None and op.latency > bound]
        result.errors = [op.describe() for op in sorted(late, key=lambda op: op.start)]
    result.expected += (
        f" (a {DEADLINE:g} s deadline plus {DEADLINE_MARGIN:g} s for the network;"
        f" the shoppers give up at {CLIENT_TIMEOUT:g} s)"
    )
    expect(result, during=scenario.faults.timeline)
