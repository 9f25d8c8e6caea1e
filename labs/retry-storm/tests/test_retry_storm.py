"""The checks of retry-storm: how the gateway retries, judged from what pricing received.

One scenario runs once for the module, in two parts.

The probe: pricing refuses every /price (503 after 300 ms) while 12 quotes arrive at the same
moment; after 2.5 s it works again. Pricing's record of when each call's attempts arrived shows
how long the gateway waited before each retry (checks 2 and 3).

The outage: 16 shoppers ask for quotes (one every 1 to 2 s each). After a calm second, pricing's
answers stop reaching the gateway for 2.5 s (a one-way partition: requests get through, answers
do not). Pricing restarts meanwhile and warms up: 9 requests in 10 get 503 after 100 ms, from the
start of the partition until 2 s after it heals; then traffic goes on for 2.5 s. Pricing
collapses while more than 60 requests a second arrive (services/pricing.py).
"""

import contextlib
import itertools
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
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
    expect,
    latency_below,
)

# -- the probe -------------------------------------------------------------------------------------
PROBE_CALLS = 12
# Seconds pricing takes to refuse a probe request: slow enough that even 12 calls retrying at
# once stay under pricing's capacity (12 x 4 a second < 60), so the probe never collapses it.
PROBE_REFUSAL = 0.3
PROBE_HOLD = 2.5  # seconds pricing refuses everything, at most

# -- the outage ------------------------------------------------------------------------------------
SHOPPERS = 16
THINK = (1.0, 2.0)  # seconds a shopper waits between quotes
CALM = 1.0
PARTITION = 2.5  # longer than THINK: every shopper has a quote in flight when it heals
WARMUP_SHARE = 0.9  # share of requests pricing refuses while it warms up
WARMUP_REFUSAL_MS = 100
WARMUP = 2.0  # seconds pricing warms up after the partition healed
AFTER = 2.5

# -- the contract ----------------------------------------------------------------------------------
CAPACITY = 60  # requests a second pricing can take (CAPACITY in services/pricing.py)
MAX_ATTEMPTS = 5  # per call, retries included
DEADLINE = 2.0  # seconds the gateway has to answer a quote
DEADLINE_MARGIN = 1.0  # for the network and a busy machine
CLIENT_TIMEOUT = 4.0  # seconds a shopper waits for an answer before giving up
MIN_WAIT = 0.05  # seconds: the mean wait before a retry, at least
GROWTH = 1.5  # the wait before attempt 4 over the wait before attempt 2, at least
MIN_SPREAD = 0.3  # coefficient of variation of the waits before one attempt number
RECOVERS_WITHIN = 1.0  # seconds after pricing is back to full capacity
RECOVERED_SHARE = 0.9

ITEMS = ["kettle", "grinder", "scale", "moka-pot", "tamper", "filter-papers"]


@dataclass
class Scenario:
    """What the scenario recorded: the shoppers' history, the faults, and pricing's record."""

    history: History
    faults: Faults
    probe: FaultEvent
    outage: FaultEvent
    warmup: FaultEvent
    attempts: dict[str, list[float]]  # call id -> arrival times at pricing, monotonic seconds
    arrivals: list[float]  # every POST /price, monotonic seconds

    @property
    def healed(self) -> float:
        assert self.outage.end is not None
        return self.outage.end

    @property
    def warmed_up(self) -> float:
        assert self.warmup.end is not None
        return self.warmup.end

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
                op.fail(f"HTTP {response.status_code}")
        client.sleep(client.rng.uniform(*THINK))

    return workload


def run_probe(faults: Faults, traffic: Traffic, base: str) -> FaultEvent:
    """Quotes that start together while pricing refuses everything; returns the fault."""
    start = threading.Barrier(PROBE_CALLS)
    finished = threading.Semaphore(0)

    def workload(client: Client) -> None:
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=5.0)
            call_id = f"probe-{client.id + 1}"
            with client.op("probe", call_id) as op:
                body = {"call_id": call_id, "item": "kettle"}
                response = client.http.post(f"{base}/quote", json=body)
                if response.status_code != 200:
                    op.fail(f"HTTP {response.status_code}")
        finally:
            finished.release()

    refusing = faults.http("pricing", status=503, delay_ms=int(PROBE_REFUSAL * 1000), path="/price")
    with refusing as event:
        run = traffic.start(workload, clients=PROBE_CALLS, iterations=1, timeout=CLIENT_TIMEOUT)
        hold_until = time.monotonic() + PROBE_HOLD
        for _ in range(PROBE_CALLS):
            if not finished.acquire(timeout=max(0.0, hold_until - time.monotonic())):
                break
    run.wait(timeout=CLIENT_TIMEOUT + 5.0)
    return event


def pricing_record(lab: LabEnvironment) -> tuple[dict[str, list[float]], list[float]]:
    """Pricing's record of POST /price, on this process's monotonic clock."""
    offset = time.time() - time.monotonic()
    attempts: dict[str, list[float]] = defaultdict(list)
    arrivals = []
    for request in HttpControl(lab, "pricing").received():
        if request.get("path") != "/price":
            continue
        at = float(str(request["time"])) - offset
        arrivals.append(at)
        body = request.get("body")
        if isinstance(body, dict) and body.get("call_id"):
            attempts[str(body["call_id"])].append(at)
    return {k: sorted(v) for k, v in attempts.items()}, sorted(arrivals)


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Iterator[Scenario]:
    faults = Faults(lab_module)
    traffic = Traffic(chaoslab_seed)
    base = lab_module.url("gateway")
    probe = run_probe(faults, traffic, base)

    run = traffic.start(
        shopper(base),
        clients=SHOPPERS,
        duration=CALM + PARTITION + WARMUP + AFTER,
        timeout=CLIENT_TIMEOUT,
    )
    time.sleep(CALM)
    warming_up = faults.http(
        "pricing",
        status=503,
        share=WARMUP_SHARE,
        delay_ms=WARMUP_REFUSAL_MS,
        path="/price",
    )
    # Pricing restarted during the partition and is still warming up when the answers get
    # through again: the gateway's first tries after the heal meet its refusals.
    with warming_up as warmup:
        with faults.partition(["pricing"], ["gateway"], one_way=True) as outage:
            time.sleep(PARTITION)
        time.sleep(WARMUP)
    history = run.wait(timeout=AFTER + CLIENT_TIMEOUT + 10.0)
    attempts, arrivals = pricing_record(lab_module)
    yield Scenario(history, faults, probe, outage, warmup, attempts, arrivals)


# -- measures --------------------------------------------------------------------------------------
def probe_waits(scenario: Scenario) -> dict[int, dict[str, float]]:
    """For attempt number n >= 2 of each probe call: how long the gateway waited before it.

    That is the time between two attempts, less the PROBE_REFUSAL pricing took to refuse the
    first of them; only attempts refused by the probe count.
    """
    assert scenario.probe.end is not None
    waits: dict[int, dict[str, float]] = defaultdict(dict)
    for call_id, times in scenario.attempts.items():
        if not call_id.startswith("probe-"):
            continue
        for n in range(2, len(times) + 1):
            previous = times[n - 2]
            if scenario.probe.start <= previous < scenario.probe.end:
                waits[n][call_id] = times[n - 1] - previous - PROBE_REFUSAL
    return dict(sorted(waits.items()))


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
    shown = ", ".join(f"before attempt {n}: {ms(m)}" for n, m in list(means.items())[:4])
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
        growth = statistics.mean(fourth) / max(statistics.mean(second), 1e-6)
        if growth < GROWTH:
            errors.append(
                f"the wait before the 4th attempt was {growth:.1f} times the wait before the"
                f" 2nd; expected at least {GROWTH:g} times (the backoff ceiling doubles at each"
                " retry)"
            )
    result = CheckResult(
        "retries back off",
        f"after a refusal the gateway waits ({ms(MIN_WAIT)} or more on average), and longer"
        " after each failed retry",
        f"mean waits of the {PROBE_CALLS} probe calls {shown or 'none'}",
        errors,
    )
    expect(result, during=[scenario.probe])


def test_3_retries_are_jittered(scenario: Scenario) -> None:
    waits = {n: list(w.values()) for n, w in probe_waits(scenario).items() if len(w) >= 4}
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
    pooled = [x / statistics.mean(w) for w in waits.values() if statistics.mean(w) > 0 for x in w]
    spread = statistics.pstdev(pooled) if len(pooled) >= 2 else 0.0
    overall = statistics.mean(x for w in waits.values() for x in w) if waits else 0.0
    errors = []
    if not waits:
        errors.append(
            f"no attempt number was retried by 4 or more of the {PROBE_CALLS} probe calls;"
            " expected them all to retry while pricing refused everything"
        )
    elif overall < MIN_WAIT:
        errors.append(
            f"the calls retried {ms(overall)} after a refusal on average, all together; expected"
            f" each to wait a random time ({ms(MIN_WAIT)} or more on average)"
        )
    elif spread < MIN_SPREAD:
        errors.append(
            f"calls that failed together waited nearly the same time before their next attempt"
            f" (coefficient of variation {spread:.2f}); expected at least {MIN_SPREAD:g}, so"
            " that they come back at different moments"
        )
    result = CheckResult(
        "retries are jittered",
        f"the {PROBE_CALLS} probe calls, refused at the same moment, wait random times before"
        f" retrying (coefficient of variation {MIN_SPREAD:g} or more)",
        shown,
        errors,
    )
    expect(result, during=[scenario.probe])


def test_4_pricing_is_not_flooded_while_it_recovers(scenario: Scenario) -> None:
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


def test_5_quotes_succeed_again_soon_after_recovery(scenario: Scenario) -> None:
    since = scenario.warmed_up + RECOVERS_WITHIN
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
    expect(result, during=scenario.faults.timeline)


def test_6_every_quote_is_answered_within_its_deadline(scenario: Scenario) -> None:
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
