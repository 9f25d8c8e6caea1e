"""The checks of graceful-shutdown: jobs flow from the queue through two consumers to the
warehouse while the harness restarts the consumers one at a time, as a deploy does.

One scenario runs once for the module. The harness enqueues orders at a steady rate, one of
them a poison message (a payload no consumer can process) and one whose first shipment fails
(the warehouse is busy once). Meanwhile it restarts consumer-1, then consumer-2: each is asked
to stop (SIGTERM) at a moment when one of its orders is on its way at the warehouse, has up to
GRACE seconds to exit, and is started again. When the orders stop, the harness waits for the
queue to settle. The checks judge the queue's record of every lease and how it ended, the
warehouse's record of every shipment, and how each consumer exited.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness import CheckResult, Faults, LabEnvironment, expect
from harness.backends.base import Stopped

RATE = 6.0  # orders enqueued per second
PRODUCE = 3.0  # seconds of orders
RESTART_AT = 0.5  # seconds into the orders when the rolling restart begins
GRACE = 3.0  # seconds a consumer has to exit once asked to stop
LEASE = 2.0  # the queue's LEASE_SECONDS (lab.toml)
MAX_ATTEMPTS = 3  # the consumers' MAX_ATTEMPTS (lab.toml)
# Seconds after the orders stop for the queue to settle, at most: o-flaky refused twice by a
# consumer that loses its lease each time (the starter) is shipped at its 3rd lease.
SETTLE = 2 * LEASE + 1.0
CONSUMERS = ["consumer-1", "consumer-2"]
# A clean exit: 0, or SIGTERM raised again once the shutdown is done (uvicorn does: a process
# (-15) or a container (128 + 15) that ends as the signal asked).
CLEAN_EXITS = (0, -15, 143)
POISON = "j-poison"
FLAKY = "j-flaky"  # order o-flaky: the warehouse answers 503 the first two times


@dataclass
class Scenario:
    regular: list[str]  # the ids of the ordinary jobs
    events: list[dict[str, Any]]  # the queue's record
    shipments: list[dict[str, Any]]  # the warehouse's record
    stops: list[tuple[str, Stopped]]
    aimed: dict[str, str | None]  # consumer -> the job it was shipping when asked to stop
    faults: Faults

    def of(self, job: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["id"] == job and kind in (None, e["kind"])]

    def shipped(self, job: str) -> int:
        return sum(1 for s in self.shipments if s.get("job") == job)


def get(lab: LabEnvironment, service: str, path: str) -> Any:
    return httpx.get(f"{lab.direct_url(service)}{path}", timeout=5.0).json()


def producing(url: str, ids: list[str], stop: threading.Event) -> Callable[[], None]:
    def produce() -> None:
        with httpx.Client(base_url=url, timeout=5.0) as client:
            n, began = 0, time.monotonic()
            while not stop.is_set():
                n += 1
                if n == 1:  # its three attempts come before any consumer is stopped
                    job, payload = FLAKY, {"order": "o-flaky", "items": 1}
                elif n == 3:
                    job, payload = POISON, {"order": "o-poison", "items": "three"}
                else:
                    job, payload = f"j-{n}", {"order": f"o-{n}", "items": 1 + n % 4}
                    ids.append(job)
                client.post("/jobs", json={"id": job, "payload": payload})
                stop.wait(max(0.0, began + n / RATE - time.monotonic()))

    return produce


def shipping_for(lab: LabEnvironment, consumer: str, timeout: float = 3.0) -> str | None:
    """Wait until one of `consumer`'s jobs has just left for the warehouse (it was not on its
    way at the previous look, so most of its SHIP_SECONDS are still ahead); that job."""
    deadline = time.monotonic() + timeout
    seen = set(get(lab, "warehouse", "/shipping"))
    while time.monotonic() < deadline:
        shipping = set(get(lab, "warehouse", "/shipping"))
        held = set(get(lab, "queue", "/held").get(consumer, []))
        fresh = (shipping - seen) & held - {FLAKY}  # o-flaky is check 5's: left alone
        if fresh:
            return sorted(fresh)[0]
        seen = shipping
        time.sleep(0.01)
    return None


def settled(lab: LabEnvironment, regular: list[str]) -> bool:
    """Every order's job ended (acked or dead-lettered), and the poison job too, or it was
    leased more often than it may be: nothing the checks judge can change any more."""
    events = get(lab, "queue", "/events")
    final = {e["id"] for e in events if e["kind"] in ("acked", "dead")}
    poison_leases = sum(1 for e in events if e["id"] == POISON and e["kind"] == "leased")
    return set(regular) | {FLAKY} <= final and (POISON in final or poison_leases > MAX_ATTEMPTS)


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment) -> Scenario:
    lab = lab_module
    faults = Faults(lab)
    regular: list[str] = []
    stop = threading.Event()
    producer = threading.Thread(target=producing(lab.url("queue"), regular, stop), daemon=True)
    began = time.monotonic()
    producer.start()
    stops, aimed = [], {}
    try:
        time.sleep(RESTART_AT)
        for consumer in CONSUMERS:
            aimed[consumer] = shipping_for(lab, consumer)
            stops += faults.rolling_restart([consumer], grace=GRACE)
        time.sleep(max(0.0, began + PRODUCE - time.monotonic()))
    finally:
        stop.set()
        producer.join(timeout=10)
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline and not settled(lab, regular):
        time.sleep(0.1)
    return Scenario(
        list(regular),
        get(lab, "queue", "/events"),
        get(lab, "warehouse", "/shipments"),
        stops,
        aimed,
        faults,
    )


def at(scenario: Scenario, event: dict[str, Any]) -> str:
    first = min(e["at"] for e in scenario.events)
    return f"{event['at'] - first:.2f} s"


# -- the checks ------------------------------------------------------------------------------
def test_1_every_job_is_shipped_once(scenario: Scenario) -> None:
    errors = []
    for job in [*scenario.regular, FLAKY]:
        shipped = scenario.shipped(job)
        if shipped != 1:
            leases = ", ".join(
                f"{e['consumer']} at {at(scenario, e)}" for e in scenario.of(job, "leased")
            )
            errors.append(f"job {job} was shipped {shipped} times (leased to {leases})")
        elif not scenario.of(job, "acked"):
            errors.append(f"job {job} was shipped but never acked: the queue still has it")
    result = CheckResult(
        "every job is shipped once",
        "each of the orders (o-flaky too) is shipped exactly once at the warehouse, and acked, "
        "across a rolling restart of the consumers that stops each one while it ships an order",
        f"{len(scenario.regular) + 1 - len(errors)} of {len(scenario.regular) + 1} orders "
        "shipped once",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_2_no_job_waits_for_its_lease_to_expire(scenario: Scenario) -> None:
    expired = [e for e in scenario.events if e["kind"] == "expired"]
    errors = [
        f"job {e['id']}'s lease (attempt {e['attempt']}) held by {e['consumer']} expired at "
        f"{at(scenario, e)}: it was dropped, neither finished nor given back"
        + (
            f" ({e['consumer']} had been asked to stop while shipping it)"
            if scenario.aimed.get(e["consumer"]) == e["id"]
            else ""
        )
        for e in expired
    ]
    result = CheckResult(
        "no job waits for its lease to expire",
        f"every lease ends in an ack, a nack or a dead-letter: none expires (a job whose lease "
        f"expires waits {LEASE:g} s for nothing, and may be done twice)",
        f"{sum(e['kind'] == 'leased' for e in scenario.events)} leases, {len(expired)} expired",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_3_consumers_exit_cleanly_within_the_grace_period(scenario: Scenario) -> None:
    errors = []
    for consumer, stopped in scenario.stops:
        if stopped.killed:
            errors.append(f"{consumer} was still running {GRACE:g} s after SIGTERM and was killed")
        elif stopped.code not in CLEAN_EXITS:
            errors.append(f"{consumer} exited with code {stopped.code} after SIGTERM, not 0")
    if len(scenario.stops) != len(CONSUMERS):
        errors.append(f"only {len(scenario.stops)} consumers were restarted (report this)")
    result = CheckResult(
        "consumers exit cleanly within the grace period",
        f"asked to stop (SIGTERM), each consumer exits by itself within {GRACE:g} s, with code 0 "
        "(or by SIGTERM again once its shutdown is done, as uvicorn does)",
        ", ".join(
            f"{c}: {'killed' if s.killed else f'exit {s.code}'} after {s.took:.2f} s"
            for c, s in scenario.stops
        ),
        errors,
    )
    expect(result, during=scenario.faults.timeline)


def test_4_a_poison_job_is_dead_lettered(scenario: Scenario) -> None:
    leases = scenario.of(POISON, "leased")
    dead = scenario.of(POISON, "dead")
    errors = []
    if not dead:
        ends = Counter(e["kind"] for e in scenario.of(POISON) if e["kind"] != "leased")
        how = ", ".join(f"{n} {kind}" for kind, n in sorted(ends.items())) or "nothing else"
        errors.append(
            f"the poison job ({{'items': 'three'}}) was leased {len(leases)} times and never "
            f"dead-lettered ({how})"
        )
    else:
        if dead[0]["attempt"] != MAX_ATTEMPTS or len(leases) != MAX_ATTEMPTS:
            errors.append(
                f"the poison job was dead-lettered at attempt {dead[0]['attempt']}, after "
                f"{len(leases)} leases: expected at its attempt {MAX_ATTEMPTS}"
            )
        if not dead[0].get("error"):
            errors.append("the poison job was dead-lettered without its error")
    if scenario.shipped(POISON):
        errors.append("the poison job was shipped")
    result = CheckResult(
        "a poison job is dead-lettered",
        f"a job that cannot be processed is tried {MAX_ATTEMPTS} times, then goes to the "
        "dead-letter queue with its error; the consumers go on with the other jobs",
        f"leased {len(leases)} times; "
        + (f"dead-lettered with {dead[0].get('error')!r}" if dead else "not dead-lettered"),
        errors,
    )
    expect(result)


def test_5_a_job_that_fails_twice_is_retried(scenario: Scenario) -> None:
    shipped = scenario.shipped(FLAKY)
    dead = scenario.of(FLAKY, "dead")
    errors = []
    if dead:
        errors.append(
            f"the job of order o-flaky was dead-lettered at attempt {dead[0]['attempt']} "
            f"({dead[0].get('error')}): its failure was transient"
        )
    if not shipped:
        errors.append("the order o-flaky was never shipped")
    result = CheckResult(
        "a job that fails twice is retried",
        f"the order whose first two shipments the warehouse refused (503, busy) is tried "
        f"again, at its attempt {MAX_ATTEMPTS} too, and shipped, not dead-lettered (check 1 "
        "counts its shipments)",
        f"leased {len(scenario.of(FLAKY, 'leased'))} times, shipped {shipped} times",
        errors,
    )
    expect(result)
