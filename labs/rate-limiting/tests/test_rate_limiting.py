"""Checks for the rate-limiting lab.

One scenario runs once for the module. Three quiet clients search about three times a second
each, while a noisy client floods the API from 4 threads (50 to 60 searches a second, five times
its quota or more), all through the load balancer. After the flood, a fresh client (the probe)
sends 30 searches at once, takes the first 429 it gets, waits the Retry-After it was told, and
tries again. The numbered checks judge what was recorded.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from harness import (
    CheckResult,
    Client,
    History,
    LabEnvironment,
    Operation,
    Timeline,
    Traffic,
    expect,
    latency_below,
)

QUOTA = 10.0  # searches per second per client, over the whole service (README)
BURST = 10  # searches a client may make at once after a quiet spell (README)
TOLERANCE = 0.15  # the noisy client's accepted rate must be within 15% of the quota
NOISY = "noisy"
NOISY_THREADS = 4
NOISY_PAUSE = 0.05  # seconds each noisy thread waits between searches
QUIET = ["quiet-1", "quiet-2", "quiet-3"]
QUIET_PAUSE = (0.2, 0.4)  # seconds a quiet client waits between searches (random in range)
WARMUP = 1.5  # seconds of flood before counting: the noisy client's first burst is spent by then
WINDOW = 6.0  # seconds over which the noisy client's accepted rate is measured
TAIL = 0.3  # seconds of traffic after the window

QUIET_P95 = 1.0  # seconds; a quiet search takes about 0.06 s
PROBE = "probe"
PROBE_BURST = 30  # searches the probe sends at once: far more than a bucket holds
RETRY_AFTER_MAX = 2  # seconds: a token is back within 1/QUOTA s, which rounds up to 1

QUERIES = ["cup", "kettle", "grinder", "press", "pot", "scale", "jar", "filter"]


@dataclass(frozen=True)
class Answer:
    """What a client saw: the status, the replica that served it, the Retry-After header."""

    status: int
    upstream: str
    retry_after: str | None

    @classmethod
    def of(cls, response: httpx.Response) -> "Answer":
        return cls(
            response.status_code,
            response.headers.get("x-upstream", "?"),
            response.headers.get("retry-after"),
        )


@dataclass
class Probe:
    """The probe's burst, the 429 it obeyed, and how its retry went."""

    answers: list[Answer] = field(default_factory=list)
    obeyed: Answer | None = None
    waited: float = 0.0
    retry: Answer | None = None
    error: str | None = None


@dataclass
class Scenario:
    history: History
    timeline: Timeline
    probe: Probe

    @property
    def counted_from(self) -> float:
        """Where the noisy client's window starts: WARMUP after its first search."""
        return min((op.start for op in self.searches(NOISY)), default=0.0) + WARMUP

    def searches(self, client: str | None = None, start: float | None = None) -> list[Operation]:
        """Searches by `client` (None: every quiet client), started in the window from `start`."""
        ops = self.history.where(
            f="search",
            started_after=start,
            started_before=None if start is None else start + WINDOW,
        )
        if client is None:
            return [op for op in ops if op.value in QUIET]
        return [op for op in ops if op.value == client]


def searches(base: str) -> Callable[[Client], None]:
    """The workload: the first NOISY_THREADS clients are the noisy client, the rest quiet."""

    def workload(client: Client) -> None:
        noisy = client.id < NOISY_THREADS
        name = NOISY if noisy else QUIET[client.id - NOISY_THREADS]
        with client.op("search", name) as op:
            response = client.http.get(
                f"{base}/search",
                params={"q": client.rng.choice(QUERIES)},
                headers={"X-Client": name},
            )
            if response.status_code == 200:
                op.ok(Answer.of(response))
            else:
                op.fail(f"HTTP {response.status_code}", Answer.of(response))
        client.sleep(NOISY_PAUSE if noisy else client.rng.uniform(*QUIET_PAUSE))

    return workload


def seconds(header: str | None) -> int | None:
    """Retry-After in whole seconds (RFC 9110 delay-seconds), or None if it is not that."""
    if header is None or not header.strip().isdigit():
        return None
    return int(header.strip())


def honest(header: str | None) -> bool:
    value = seconds(header)
    return value is not None and 1 <= value <= RETRY_AFTER_MAX


async def burst(base: str, client: str, n: int) -> list[tuple[float, Answer]]:
    """`n` searches at once by `client`; each answer with the time it arrived."""
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:

        async def one() -> tuple[float, Answer]:
            response = await http.get(
                f"{base}/search", params={"q": "cup"}, headers={"X-Client": client}
            )
            return time.monotonic(), Answer.of(response)

        return list(await asyncio.gather(*(one() for _ in range(n))))


def probe(base: str) -> Probe:
    """Drain a fresh client's bucket, obey the first 429's Retry-After, and try once more."""
    found = Probe()
    try:
        arrivals = asyncio.run(burst(base, PROBE, PROBE_BURST))
        found.answers = [answer for _, answer in arrivals]
        refused = [(t, a) for t, a in arrivals if a.status == 429]
        if not refused:
            return found
        arrived, found.obeyed = min(refused, key=lambda arrival: arrival[0])
        wait = seconds(found.obeyed.retry_after)
        if not honest(found.obeyed.retry_after) or wait is None:
            return found
        time.sleep(max(0.0, arrived + wait - time.monotonic()))
        found.waited = time.monotonic() - arrived
        response = httpx.get(
            f"{base}/search", params={"q": "cup"}, headers={"X-Client": PROBE}, timeout=5.0
        )
        found.retry = Answer.of(response)
    except httpx.HTTPError as exc:
        found.error = f"{type(exc).__name__}: {exc}"
    return found


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Iterator[Scenario]:
    base = lab_module.url("lb")
    traffic = Traffic(chaoslab_seed)
    timeline = Timeline()
    flood = timeline.open(
        f"client '{NOISY}' flooding from {NOISY_THREADS} threads, while"
        f" {len(QUIET)} quiet clients search"
    )
    run = traffic.start(
        searches(base),
        clients=NOISY_THREADS + len(QUIET),
        duration=WARMUP + WINDOW + TAIL,
        timeout=5.0,
    )
    history = run.wait(timeout=WARMUP + WINDOW + TAIL + 20.0)
    flood.end = time.monotonic()
    yield Scenario(history, timeline, probe(base))


def test_1_noisy_client_is_held_to_its_quota(scenario: Scenario) -> None:
    sent = scenario.searches(NOISY, scenario.counted_from)
    accepted = [op for op in sent if op.status == "ok"]
    refused = [op for op in sent if op.status != "ok"]
    rate = len(accepted) / WINDOW
    low, high = QUOTA * (1 - TOLERANCE), QUOTA * (1 + TOLERANCE)
    per_replica = Counter(op.result.upstream for op in accepted if isinstance(op.result, Answer))
    errors = []
    if not low <= rate <= high:
        errors.append(
            f"'{NOISY}' had {len(accepted)} searches accepted in {WINDOW:g} s ({rate:.1f}/s);"
            f" its quota is {QUOTA:g}/s for the whole service, however many replicas serve it"
        )
        errors += [
            f"{name} accepted {n} of them ({n / WINDOW:.1f}/s)"
            for name, n in sorted(per_replica.items())
        ]
    result = CheckResult(
        "the noisy client is held to its quota",
        f"'{NOISY}' accepted at {QUOTA:g}/s (+/- {TOLERANCE:.0%}: {low:.1f} to {high:.1f}/s),"
        f" counted over {WINDOW:g} s once its first burst is spent",
        f"{rate:.1f}/s accepted; it sent {len(sent) / WINDOW:.0f}/s and"
        f" {len(refused)} were refused",
        errors,
    )
    expect(result, during=scenario.timeline)


def test_2_quiet_clients_are_never_refused(scenario: Scenario) -> None:
    ops = scenario.searches()
    failed = [op for op in ops if op.status != "ok"]
    errors = [op.describe() for op in failed]
    if not ops:
        errors.append("the quiet clients made no search; expected some")
    result = CheckResult(
        "quiet clients are never refused",
        f"every search by {', '.join(QUIET)} answered 200 (each stays far under its quota)",
        f"{len(failed)} of {len(ops)} failed" if failed else f"all {len(ops)} answered 200",
        errors,
    )
    expect(result, during=scenario.timeline)


def test_3_quiet_clients_stay_fast(scenario: Scenario) -> None:
    result = latency_below(scenario.searches(), QUIET_P95, q=95, what="quiet client's search")
    result.expected += " while the noisy client floods (a search takes about 60 ms)"
    expect(result, during=scenario.timeline)


def test_4_retry_after_is_honest(scenario: Scenario) -> None:
    found = scenario.probe
    errors = []
    flood_refusals = [
        op.result
        for op in scenario.searches(NOISY)
        if isinstance(op.result, Answer) and op.result.status == 429
    ]
    dishonest = Counter(a.retry_after for a in flood_refusals if not honest(a.retry_after))
    errors += [
        f"{n} of the {len(flood_refusals)} 429s '{NOISY}' got said Retry-After: {value!r}"
        for value, n in dishonest.most_common()
    ]
    statuses = Counter(a.status for a in found.answers)
    sent = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    if found.error:
        errors.append(f"'{PROBE}' could not finish: {found.error}")
    elif found.obeyed is None:
        errors.append(
            f"'{PROBE}' sent {PROBE_BURST} searches at once and got no 429 ({sent});"
            f" expected about {BURST} accepted and the rest refused"
        )
    elif found.retry is None:
        errors.append(
            f"'{PROBE}' sent {PROBE_BURST} searches at once ({sent}); its 429 said"
            f" Retry-After: {found.obeyed.retry_after!r}, expected whole seconds from 1 to"
            f" {RETRY_AFTER_MAX} (a token is back within {1 / QUOTA:g} s; 0 sends the client"
            " straight back into another 429)"
        )
    elif found.retry.status != 200:
        errors.append(
            f"'{PROBE}' waited {found.waited:.2f} s as its Retry-After:"
            f" {found.obeyed.retry_after} said, and its retry got {found.retry.status}"
            f" from {found.retry.upstream}; expected 200"
        )
    result = CheckResult(
        "Retry-After is honest",
        f"every 429 says Retry-After in whole seconds (1 to {RETRY_AFTER_MAX}), and a client"
        " that waits that long is served",
        "as expected"
        if not errors
        else f"{len(errors)} problem(s); '{PROBE}' burst of {PROBE_BURST}: {sent}",
        errors,
    )
    expect(result, during=scenario.timeline)
