"""The checks of quorum-replication: a key-value store on three replicas, driven through
partitions, crashes and latency, and judged by porcupine and by what the replicas recorded.

One scenario runs once for the module, in two parts, and every check judges its recording.

1. Four clients put and get two keys for about 3 s while, one at a time, replica-a is cut
   off from the coordinator (a black hole), replica-b is killed (and restarted), and the
   link to replica-c gets 300 ms of latency.
2. Probes: single operations on keys of their own, each step sent while chosen replicas are
   cut off or fail writes, in an order that exposes one way to be wrong each: a read that
   misses a write only one replica holds, a write only one replica stored, a fast but stale
   replica, a read from a minority, and a coordinator restarted between two writes.

What the coordinator says about itself is never evidence: the history is what the checks'
own clients saw, and the replicas write down every request they receive.
"""

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
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
    all_of,
    expect,
    linearizable,
)

REPLICAS = ("replica-a", "replica-b", "replica-c")
COORDINATOR = "coordinator"
MAJORITY = 2

# Part 1: the nemesis with one replica down at a time.
CLIENTS = 4
KEYS = ("x", "y")
CLIENT_TIMEOUT = 1.0  # seconds the part-1 clients wait for an answer
THINK = (0.02, 0.05)  # seconds a client pauses between operations
CALM = 0.1  # seconds before, between and after the faults
# Seconds each one-replica fault lasts (a crash: until the replica is back). An operation is
# judged if it started and ended while the fault was on: the cut-off lasts longer than the
# clients' timeout, so that a coordinator that waits for the cut-off replica shows it.
CUT_HOLD = 1.4
# The crash and the slow link: long enough that a loaded machine (or a container's restart on
# the docker backend) still leaves many operations that start and end inside (0.4 s was not).
HOLD = 1.0
SLOW_MS = 300  # latency on the link to the slow replica
# A working coordinator answers every operation here; a few may be lost to the moment a
# fault starts. One that waits for all three replicas answers none in time.
AVAILABLE_SHARE = 0.9

# Part 2: the probes.
PROBE_TIMEOUT = 1.2  # seconds a probe waits for an answer while a majority is reachable
REFUSE_WITHIN = 2.0  # seconds by which a refusal (503) must come without a majority
REFUSAL_TIMEOUT = 2.3  # seconds a probe waits without a majority: long enough to see a late one
ATTEMPTS = 3  # tries of a probe that a majority could answer (a loaded machine may be slow)
# Tries of a write a later probe relies on (its premise): on docker with both cores busy, a
# coordinator that counts a replica slower than 0.5 s as down once failed all three tries of
# k-minority's write, and a minority read of '' was then a valid answer.
PREMISE_ATTEMPTS = 8
SETTLE_WITHIN = 3.0  # seconds a failed write's replicas are given to see (and fail) it
BEHIND_MS = 250  # latency on the up-to-date replica, so the stale one answers first
# Replica arrival times are wall-clock seconds moved onto the checks' clock (same machine,
# same clock); this covers the move when matching a request to the operation it served.
CLOCK_SLACK = 0.01


# -- the clients' side of the protocol ------------------------------------------------------
@dataclass
class Recorder:
    """Sends operations to the coordinator and records them: the history, and the HTTP
    status of every answer (None: no answer)."""

    base: str
    history: History
    statuses: dict[int, int | None] = field(default_factory=dict)
    values: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def get(self, http: httpx.Client, client: int, key: str, timeout: float) -> Operation:
        op = self.history.invoke(client, "get", key)
        try:
            response = http.get(f"{self.base}/kv/{key}", timeout=timeout)
        except httpx.TransportError as exc:
            self.statuses[op.id] = None
            # A read that got no answer changed nothing and told nothing.
            return self.history.complete(op, "fail", error=describe(exc))
        self.statuses[op.id] = response.status_code
        if response.status_code != 200:
            return self.history.complete(op, "fail", error=answer_text(response))
        body = body_of(response)
        value = body.get("value") if isinstance(body, dict) else None
        if value is None or not isinstance(value, str):
            value = f"<not a value: {str(body)[:60]}>"
        return self.history.complete(op, "ok", result=value)

    def put(
        self, http: httpx.Client, client: int, key: str, value: str, timeout: float
    ) -> Operation:
        op = self.history.invoke(client, "put", (key, value))
        try:
            response = http.put(f"{self.base}/kv/{key}", json={"value": value}, timeout=timeout)
        except httpx.TransportError as exc:
            self.statuses[op.id] = None
            return self.history.complete(op, "unknown", error=describe(exc))
        self.statuses[op.id] = response.status_code
        if response.status_code != 200:
            # Refused or failed, the write may still have reached a replica or two.
            return self.history.complete(op, "unknown", error=answer_text(response))
        return self.history.complete(op, "ok")


def describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    return f"connection failed ({type(exc).__name__})"


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:80]


def answer_text(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {str(body_of(response))[:60]}".strip()


def show(op: Operation, origin: float) -> str:
    """An operation as the checks print it."""
    call = f"get({op.value!r})" if op.f == "get" else f"put{tuple(op.value)!r}"
    at = f"at {op.start - origin:.2f} s"
    if op.status == "ok":
        got = f"-> {op.result!r}" if op.f == "get" else "-> ok"
    else:
        got = f"-> {op.error or op.status}"
    took = f" after {op.latency * 1000:.0f} ms" if op.latency is not None else ""
    return f"client {op.client}: {call} {got}{took} (called {at})"


# -- what the replicas recorded -------------------------------------------------------------
@dataclass
class Arrival:
    """One request a replica received, on the checks' clock."""

    replica: str
    at: float
    method: str
    key: str
    value: str | None


def replica_records(lab: LabEnvironment) -> list[Arrival]:
    offset = time.time() - time.monotonic()
    arrivals = []
    for replica in REPLICAS:
        rows = httpx.get(f"{lab.direct_url(replica)}/requests", timeout=5.0).json()
        arrivals += [
            Arrival(replica, float(r["time"]) - offset, r["method"], r["key"], r["value"])
            for r in rows
        ]
    return arrivals


# -- the scenario ---------------------------------------------------------------------------
@dataclass
class Outage:
    """One fault of part 1, and the time it was fully on: from just after it was applied to
    just before its heal began (judged operations start and end inside)."""

    event: FaultEvent
    start: float
    end: float


@dataclass
class Scenario:
    history: History
    faults: Faults
    statuses: dict[int, int | None]
    one_down: list[Outage]  # part 1: each fault that took one replica away
    without_majority: list[Operation]  # part 2: the probes sent while two were cut off
    arrivals: list[Arrival]
    origin: float
    by_key: dict[str, list[Operation]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_key = defaultdict(list)
        for op in self.history:
            self.by_key[key_of(op)].append(op)

    def arrived(self, op: Operation) -> dict[str, list[Arrival]]:
        """The requests for op's key that each replica received while op was in flight
        (PUTs: those carrying op's value, up to its answer)."""
        assert op.end is not None
        found: dict[str, list[Arrival]] = defaultdict(list)
        key = key_of(op)
        for arrival in self.arrivals:
            if arrival.key != key or not (
                op.start - CLOCK_SLACK <= arrival.at <= op.end + CLOCK_SLACK
            ):
                continue
            asked = op.f == "get" and arrival.method == "GET"
            sent = op.f == "put" and arrival.method == "PUT" and arrival.value == op.value[1]
            if asked or sent:
                found[arrival.replica].append(arrival)
        return found

    def alone(self, op: Operation) -> bool:
        """Whether no other operation on op's key was in flight at the same time (so every
        request for the key that a replica received meanwhile was op's)."""
        end = op.end if op.end is not None else float("inf")
        for other in self.by_key[key_of(op)]:
            other_end = other.end if other.end is not None else float("inf")
            if other is not op and other.start <= end and other_end >= op.start:
                return False
        return True

    def during(self, ops: list[Operation]) -> list[FaultEvent]:
        """The faults active while any of `ops` was in flight."""
        if not ops:
            return []
        begin = min(op.start for op in ops)
        end = max(op.end if op.end is not None else op.start for op in ops)
        return self.faults.timeline.during(begin, end)


def key_of(op: Operation) -> str:
    return str(op.value if op.f == "get" else op.value[0])


def nemesis_workload(recorder: Recorder) -> Callable[[Client], None]:
    def workload(client: Client) -> None:
        key = client.rng.choice(KEYS)
        if client.rng.random() < 0.5:
            recorder.get(client.http, client.id, key, CLIENT_TIMEOUT)
        else:
            value = f"{key}-{next(recorder.values)}"
            recorder.put(client.http, client.id, key, value, CLIENT_TIMEOUT)
        client.sleep(client.rng.uniform(*THINK))

    return workload


def one_replica_down(faults: Faults) -> list[Outage]:
    """Part 1's faults, one at a time, with calm in between."""
    outages = []
    time.sleep(CALM)
    with faults.partition([COORDINATOR], ["replica-a"]) as event:
        start = time.monotonic()
        time.sleep(CUT_HOLD)
        outages.append(Outage(event, start, time.monotonic()))
    time.sleep(CALM)
    with faults.crash("replica-b") as event:  # restarted, and ready, before it heals
        start = time.monotonic()
        time.sleep(HOLD)
        outages.append(Outage(event, start, time.monotonic()))
    time.sleep(CALM)
    with faults.latency(f"{COORDINATOR} -> replica-c", SLOW_MS) as event:
        start = time.monotonic()
        time.sleep(HOLD)
        outages.append(Outage(event, start, time.monotonic()))
    time.sleep(CALM)
    return outages


Step = tuple[str, str, str | None]  # (f, key, value)


class Probes:
    """Part 2: operations sent one state of the network at a time, each state's at once."""

    def __init__(self, lab: LabEnvironment, faults: Faults, recorder: Recorder) -> None:
        self.lab = lab
        self.faults = faults
        self.recorder = recorder
        self.http = httpx.Client(trust_env=False)
        self.clients = itertools.count(CLIENTS)

    def cut(self, *replicas: str) -> AbstractContextManager[object]:
        return self.faults.partition([COORDINATOR], replicas)

    def fail_writes(self, replica: str) -> AbstractContextManager[object]:
        """The replica fails every write (HTTP 500) without storing it; reads still work."""
        return self.faults.http(replica, status=500, path="/kv/", method="PUT")

    def run(
        self,
        steps: list[Step],
        *faults: AbstractContextManager[Any],
        timeout: float = PROBE_TIMEOUT,
        retry: bool = True,
        retry_unanswered: bool = False,
        failing: tuple[str, ...] = (),
    ) -> list[Operation]:
        """Send the steps at once while the faults are on; returns each one's last attempt.
        With `retry`, a step answered with an error although a majority was reachable (a
        slow moment on a loaded machine) is sent again, a put with a fresh value. With
        `retry_unanswered`, one the coordinator did not answer in time is sent again too: for
        the writes a later probe relies on, where every replica answers (none is cut off), so
        that only a slow machine, never a waiting coordinator, leaves them unacknowledged.
        With `failing` (the replicas the faults make fail writes), the faults stay on until
        each of them has been sent every put and every read's write-back (or SETTLE_WITHIN
        passed): a coordinator that answers first and copies the write in the background must
        not find them healed."""
        attempts = PREMISE_ATTEMPTS if retry_unanswered else ATTEMPTS if retry else 1
        since = time.time()
        with all_of(*faults), ThreadPoolExecutor(len(steps)) as pool:  # type: ignore[arg-type]
            ops = list(
                pool.map(lambda step: self.send(step, timeout, attempts, retry_unanswered), steps)
            )
            self.wait_until_sent(ops, failing, since)
            return ops

    def wait_until_sent(
        self, ops: list[Operation], replicas: tuple[str, ...], since: float
    ) -> None:
        """Wait until each replica has received a PUT of each put's value, and a PUT of each
        read key since `since` (the read's write-back), for at most SETTLE_WITHIN; the
        middleware records a request before it fails it."""
        wanted = {(f"/kv/{op.value[0]}", op.value[1]) for op in ops if op.f == "put"}
        read = {f"/kv/{op.value}" for op in ops if op.f == "get"}
        deadline = time.monotonic() + SETTLE_WITHIN
        pending = list(replicas)
        while pending and time.monotonic() < deadline:
            for replica in list(pending):
                puts = [
                    r for r in HttpControl(self.lab, replica).received() if r["method"] == "PUT"
                ]
                sent = {
                    (r["path"], body.get("value"))
                    for r in puts
                    if isinstance(body := r["body"], dict)
                }
                written_back = {
                    r["path"]
                    for r in puts
                    if isinstance(at := r.get("time"), float) and at >= since
                }
                if wanted <= sent and read <= written_back:
                    pending.remove(replica)
            time.sleep(0.05)

    def send(
        self, step: Step, timeout: float, attempts: int, retry_unanswered: bool = False
    ) -> Operation:
        f, key, value = step
        client = next(self.clients)
        for attempt in range(1, attempts + 1):
            if f == "get":
                op = self.recorder.get(self.http, client, key, timeout)
            else:
                assert value is not None
                again = value if attempt == 1 else f"{value}-attempt-{attempt}"
                op = self.recorder.put(self.http, client, key, again, timeout)
            unanswered = self.recorder.statuses.get(op.id) is None
            if op.status == "ok" or (unanswered and not retry_unanswered):
                break  # a coordinator that does not answer in time is not retried
        return op

    def close(self) -> None:
        self.http.close()


def run_probes(probes: Probes) -> list[Operation]:
    """The probes; returns those sent while a majority of the replicas was cut off."""
    # "k-partial": a write that only replica-a stored (b and c failed it), read through a and
    # b while b fails writes, then through b and c: the first read cannot make a majority
    # hold what a has, so it must not return it, or the second read goes back in time.
    # "k-lost": a write that only replica-a stored, then read through b and c.
    # "k-behind": a write that replica-a failed, then read while a is the fast one.
    # "k-minority": a write that replica-a failed, then read while only a is reachable.
    # The writes later probes rely on are acknowledged: a docker run on a loaded machine once
    # left k-minority's unanswered, and a minority read of '' was then a valid answer.
    probes.run([("put", "k-partial", "k-partial-1")], retry_unanswered=True)
    probes.run(
        [("put", "k-behind", "k-behind-1"), ("put", "k-minority", "k-minority-1")],
        probes.fail_writes("replica-a"),
        retry_unanswered=True,
        failing=("replica-a",),
    )
    probes.run(
        [("put", "k-partial", "k-partial-2"), ("put", "k-lost", "k-lost-1")],
        probes.fail_writes("replica-b"),
        probes.fail_writes("replica-c"),
        retry=False,
        failing=("replica-b", "replica-c"),
    )
    refused = probes.run(
        [
            ("put", "k-refused", "k-refused-1"),
            ("get", "k-minority", None),
            ("get", "k-refused", None),
        ],
        probes.cut("replica-b", "replica-c"),
        timeout=REFUSAL_TIMEOUT,
        retry=False,
    )
    probes.run(
        [("get", "k-partial", None)],
        probes.cut("replica-c"),
        probes.fail_writes("replica-b"),
        retry=False,  # no majority can hold a's value: a refusal is the right answer
        failing=("replica-b",),
    )
    probes.run([("get", "k-partial", None), ("get", "k-lost", None)], probes.cut("replica-a"))
    probes.run(
        [("get", "k-behind", None)],
        probes.cut("replica-b"),
        probes.faults.latency(f"{COORDINATOR} -> replica-c", BEHIND_MS),
    )
    # "k-restart": two writes, the coordinator killed and restarted, a third write, a read.
    probes.run([("put", "k-restart", "k-restart-1")])
    probes.run([("put", "k-restart", "k-restart-2")])
    probes.faults.kill(COORDINATOR)
    probes.faults.restart(COORDINATOR)
    probes.run([("put", "k-restart", "k-restart-3")])
    probes.run([("get", "k-restart", None)])
    return refused


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    faults = Faults(lab_module)
    traffic = Traffic(chaoslab_seed)
    recorder = Recorder(lab_module.url(COORDINATOR), traffic.history)
    origin = time.monotonic()
    run = traffic.start(nemesis_workload(recorder), clients=CLIENTS, duration=30.0)
    try:
        one_down = one_replica_down(faults)
    finally:
        run.stop()
    probes = Probes(lab_module, faults, recorder)
    try:
        refused = run_probes(probes)
    finally:
        probes.close()
    return Scenario(
        traffic.history,
        faults,
        recorder.statuses,
        one_down,
        refused,
        replica_records(lab_module),
        origin,
    )


# -- the checks -----------------------------------------------------------------------------
def test_1_every_key_is_linearizable(scenario: Scenario, lab_module: LabEnvironment) -> None:
    result = linearizable(
        scenario.history,
        model="kv",
        timeline=scenario.faults.timeline,
        visualization=lab_module.artifact("linearizability.html"),
    )
    expect(result)


def test_2_available_with_one_replica_down(scenario: Scenario) -> None:
    errors = []
    observed = []
    failed: list[FaultEvent] = []
    for outage in scenario.one_down:
        event = outage.event
        ops = [
            op
            for op in scenario.history
            if op.client < CLIENTS
            and op.end is not None
            and outage.start <= op.start
            and op.end <= outage.end
        ]
        ok = [op for op in ops if op.status == "ok"]
        share = len(ok) / len(ops) if ops else 0.0
        observed.append(f"{len(ok)} of {len(ops)} ok during {event}")
        lasted = outage.end - outage.start
        if not ops:
            failed.append(event)
            errors.append(
                f"during {event} ({lasted:.1f} s), no operation started and ended (answered"
                " or given up on); expected many (two replicas, a majority, were up)"
            )
        elif share < AVAILABLE_SHARE:
            failed.append(event)
            errors.append(
                f"during {event} ({lasted:.1f} s), {len(ok)} of {len(ops)} operations"
                f" ({share:.0%}) were answered 200 within {CLIENT_TIMEOUT:g} s; expected at"
                f" least {AVAILABLE_SHARE:.0%} (two replicas, a majority, were up)"
            )
            errors += [f"  {show(op, scenario.origin)}" for op in ops if op.status != "ok"][:5]
    result = CheckResult(
        "available with one replica down",
        f"at least {AVAILABLE_SHARE:.0%} of the operations that started and ended while one"
        f" replica was cut off, crashed or slow ({SLOW_MS} ms) answered 200 within"
        f" {CLIENT_TIMEOUT:g} s",
        "; ".join(observed),
        errors,
    )
    expect(result, during=failed)


def test_3_refuses_without_a_majority(scenario: Scenario) -> None:
    errors = []
    for op in scenario.without_majority:
        status = scenario.statuses.get(op.id)
        took = op.latency if op.latency is not None else float("inf")
        if status == 503 and took <= REFUSE_WITHIN:
            continue
        if status is None:
            observed = f"was not answered within {REFUSAL_TIMEOUT:g} s ({op.error})"
        elif status == 200:
            got = f" {op.result!r}" if op.f == "get" else ""
            observed = f"was answered 200{got} after {took * 1000:.0f} ms"
        else:
            observed = f"was answered {op.error} after {took * 1000:.0f} ms"
        call = f"get({op.value!r})" if op.f == "get" else f"put{tuple(op.value)!r}"
        errors.append(
            f"{call}, sent while replica-b and replica-c were cut off, {observed};"
            f" expected 503 within {REFUSE_WITHIN:g} s (only replica-a, a minority, was"
            " reachable)"
        )
    refused = len(scenario.without_majority) - len(errors)
    result = CheckResult(
        "refuses without a majority",
        f"every read and write sent while two of the three replicas were cut off is answered"
        f" 503 within {REFUSE_WITHIN:g} s, never 200",
        f"{refused} of {len(scenario.without_majority)} refused in time",
        errors,
    )
    expect(result, during=scenario.during(scenario.without_majority))


def test_4_every_answer_came_from_a_majority(scenario: Scenario) -> None:
    judged = [op for op in scenario.history if op.status == "ok" and scenario.alone(op)]
    errors = []
    wrong: list[Operation] = []
    for op in judged:
        reached = scenario.arrived(op)
        if len(reached) >= MAJORITY:
            continue
        names = " and ".join(sorted(reached)) or "no replica"
        if op.f == "get":
            what = f"only {names} received a read of {op.value!r} while it was in flight"
        else:
            what = f"only {names} received the value {op.value[1]!r} before it was answered"
        wrong.append(op)
        errors.append(
            f"{show(op, scenario.origin)}: {what}; expected at least {MAJORITY} of the"
            f" {len(REPLICAS)} replicas"
        )
    result = CheckResult(
        "every answer came from a majority",
        f"every read answered 200 asked at least {MAJORITY} replicas, and every write"
        f" answered 200 reached at least {MAJORITY} before its answer (from the replicas'"
        " records)",
        f"{len(judged) - len(errors)} of {len(judged)} answers judged (those with no other"
        " operation on their key at the same time) came from a majority",
        errors,
    )
    expect(result, during=scenario.during(wrong))
