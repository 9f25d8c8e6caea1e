"""The checks of at-least-once: top-ups published to a broker that delivers at least once, and
judged against what the consumer wrote down.

One scenario runs once for the module. Two publishers put top-up messages on the broker, about
ten a second, while a seeded fault schedule runs: three times the broker's acks are slowed past
the lease and the consumer is killed (SIGKILL) while an ack is in flight, then restarted; once
the broker takes an ack but holds its answer back and the consumer is killed while it waits;
once the acks are slowed for a while without a crash; once every delivery reaches the consumer
twice.
Then the faults heal, the publishers stop, and the checks wait until the broker holds no
unacknowledged message. The four checks judge the broker's record and the consumer's accounts.
"""

import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness import (
    CheckFailed,
    CheckResult,
    Client,
    Faults,
    LabEnvironment,
    Schedule,
    Step,
    Timeline,
    Traffic,
    exactly_once,
    expect,
)

LEASE = 1.0  # seconds: the broker's visibility timeout (services/broker.py, LEASE_SECONDS)
ACK_DELAY_MS = 1500  # how long a slowed ack waits at the broker: well past the lease
IN_FLIGHT = 0.6  # seconds of slow acks before the crash: the consumer is waiting on an ack
PUBLISHERS = 2
PUBLISH_EVERY = 0.2  # seconds between one publisher's messages
ACCOUNTS = [f"acct-{n}" for n in range(1, 6)]
DRAIN_BOUND = 12.0  # seconds after the heal by which every message must be acked (takes ~2 s)
SETTLE = 0.3  # seconds to let a last apply land after the queue drained

FaultMaker = Callable[[Faults], AbstractContextManager[object]]


# -- the fault schedule ----------------------------------------------------------------------
@contextmanager
def crash_while_acking(faults: Faults, **ack_fault: Any) -> Iterator[None]:
    """Fault the broker's acks, let the consumer apply a message and send its ack, then kill it
    (SIGKILL) before it has its answer. It stays down for the step's hold, and restarts once
    acks are normal again."""
    try:
        with faults.http("broker", path="/ack", **ack_fault):
            time.sleep(IN_FLIGHT)
            faults.kill("consumer")
            yield
    finally:
        faults.restart("consumer")


def crash_while_an_ack_is_in_flight(faults: Faults) -> AbstractContextManager[None]:
    """Acks slowed past the lease: the broker redelivers what the consumer had applied."""
    return crash_while_acking(faults, delay_ms=ACK_DELAY_MS)


def crash_while_an_ack_answer_is_held(faults: Faults) -> AbstractContextManager[None]:
    """The broker takes the ack at once but holds its answer back. A consumer that applies
    before it acks loses nothing here; one that acks first loses the message it had not
    applied yet."""
    return crash_while_acking(faults, response_delay_ms=ACK_DELAY_MS)


def slow_acks(faults: Faults) -> AbstractContextManager[object]:
    return faults.http("broker", delay_ms=ACK_DELAY_MS, path="/ack")


def deliver_twice(faults: Faults) -> AbstractContextManager[object]:
    return faults.http("broker", duplicate=True, path="/messages/next", method="GET")


MENU: dict[str, tuple[FaultMaker, tuple[float, float], float]] = {
    # name: (fault, its hold range in seconds, seconds it takes beyond its hold)
    "crash the consumer while an ack is in flight": (
        crash_while_an_ack_is_in_flight,
        (0.2, 0.4),
        IN_FLIGHT + 1.0,  # + the restart
    ),
    "crash the consumer while the answer to its ack is held back": (
        crash_while_an_ack_answer_is_held,
        (0.2, 0.4),
        IN_FLIGHT + 1.0,
    ),
    f"acks delayed {ACK_DELAY_MS} ms (the lease is {LEASE:g} s)": (slow_acks, (1.6, 2.2), 0.0),
    "every delivery sent twice": (deliver_twice, (0.8, 1.2), 0.0),
}


def fault_schedule(seed: int) -> Schedule:
    """Four crashes (one while an ack's answer is held back), one stretch of slow acks, one of
    double deliveries: in a seeded order."""
    rng = random.Random(f"at-least-once:{seed}")
    crash, held, slow, twice = MENU
    plan = [crash, crash, crash, held, slow, twice]
    rng.shuffle(plan)
    steps = []
    at = rng.uniform(0.3, 0.6)
    for name in plan:
        make, holds, extra = MENU[name]
        hold = round(rng.uniform(*holds), 2)
        steps.append(Step(round(at, 2), hold, name, make))
        at += hold + extra + rng.uniform(0.3, 0.6)
    return Schedule(tuple(steps), seed)


# -- the producer ------------------------------------------------------------------------------
def publish(client: Client, url: str, numbers: Iterator[int]) -> None:
    """One top-up message: a fresh id, a random account and amount (cents)."""
    message = {
        "id": f"m-{next(numbers)}",
        "body": {
            "account": client.rng.choice(ACCOUNTS),
            "amount": client.rng.randrange(100, 10_000, 5),
        },
    }
    with client.op("publish", message) as op:
        response = client.http.post(url, json=message)
        if response.status_code not in (200, 201):
            op.fail(f"HTTP {response.status_code}: {response.text[:200]}")
    client.sleep(PUBLISH_EVERY)


# -- what the scenario recorded ----------------------------------------------------------------
@dataclass
class Delivered:
    """What was published, what the broker did with it, and what the consumer applied."""

    broker: dict[str, dict[str, Any]]  # message id -> the broker's record of it
    balances: dict[str, int]
    statement: list[dict[str, Any]]  # one line per credit applied
    drained_after: float | None  # seconds after the heal until all was acked; None: never
    timeline: Timeline

    def published(self) -> dict[str, dict[str, Any]]:
        """The body of every message the broker accepted, by id, in publish order."""
        return {key: record["body"] for key, record in self.broker.items()}

    def applied(self) -> list[str]:
        return [line["message"] for line in self.statement]


def broker_record(lab: LabEnvironment) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{lab.direct_url('broker')}/messages", timeout=5.0)
    return {m["id"]: m for m in response.json()}


def read_accounts(lab: LabEnvironment) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The consumer's GET /accounts, or a verdict that says how it breaks the contract."""
    url = f"{lab.direct_url('consumer')}/accounts"
    try:
        data = httpx.get(url, timeout=5.0).json()
        balances = {str(account): int(cents) for account, cents in data["balances"].items()}
        statement = [
            {"message": line["message"], "account": line["account"], "amount": line["amount"]}
            for line in data["statement"]
        ]
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckFailed(
            CheckResult(
                "the consumer shows its accounts",
                'GET /accounts answers {"balances": {...}, "statement": [{"message", "account", '
                '"amount"}, ...]} (see the README)',
                f"{type(exc).__name__}: {exc}",
                ["the checks cannot read what the consumer applied"],
            )
        ) from exc
    return balances, statement


def wait_until_drained(lab: LabEnvironment, bound: float) -> float | None:
    """Seconds until the broker holds no unacknowledged message, or None after `bound`."""
    start = time.monotonic()
    while time.monotonic() - start < bound:
        if all(m["state"] == "acked" for m in broker_record(lab).values()):
            return time.monotonic() - start
        time.sleep(0.1)
    return None


@pytest.fixture(scope="module")
def delivered(lab_module: LabEnvironment, chaoslab_seed: int) -> Delivered:
    faults = Faults(lab_module)
    schedule = fault_schedule(chaoslab_seed)
    url = f"{lab_module.url('broker')}/messages"
    numbers = itertools.count(1)
    with Traffic(chaoslab_seed).start(
        lambda client: publish(client, url, numbers), clients=PUBLISHERS
    ) as run:
        schedule.run(faults)
        run.stop()
    drained_after = wait_until_drained(lab_module, DRAIN_BOUND)
    time.sleep(SETTLE)
    balances, statement = read_accounts(lab_module)
    return Delivered(
        broker_record(lab_module),
        balances,
        statement,
        drained_after,
        faults.timeline,
    )


def deliveries(record: dict[str, Any], applied: int = 0) -> str:
    """How the broker handled one message, in words."""
    n = len(record["deliveries"])
    text = "the broker delivered it once" if n == 1 else f"the broker delivered it {n} times"
    refused = record["refused_acks"]
    if refused:
        text += f" ({refused} ack{'s' if refused > 1 else ''} came after the lease had expired)"
    if applied > n:
        text += ", and a delivery reached the consumer twice"
    return text


def with_deliveries(error: str, broker: dict[str, dict[str, Any]], applied: Counter[str]) -> str:
    """`message m-7 applied 2 times; expected 1`, and how the broker delivered m-7."""
    key = error.split()[1]
    return f"{error}; {deliveries(broker[key], applied[key])}" if key in broker else error


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


# -- the checks --------------------------------------------------------------------------------
def test_1_every_message_applied_once(delivered: Delivered) -> None:
    published = delivered.published()
    missing = set(published) - set(delivered.applied())  # check 2 reports these
    result = exactly_once(delivered.applied(), published, what="message", allow_missing=missing)
    applied = Counter(delivered.applied())
    result.errors = [with_deliveries(e, delivered.broker, applied) for e in result.errors]
    redelivered = sum(1 for m in delivered.broker.values() if len(m["deliveries"]) > 1)
    result.observed += f"; the broker delivered {redelivered} messages more than once"
    expect(result, during=delivered.timeline)


def test_2_no_message_lost(delivered: Delivered) -> None:
    published = delivered.published()
    applied = set(delivered.applied())
    errors = []
    for key in published:
        if key in applied:
            continue
        state = delivered.broker[key]["state"]
        if state == "acked":
            errors.append(f"message {key} was acked but never applied: it is gone for good")
        else:
            errors.append(f"message {key} was never applied (the broker still has it {state})")
    expect(
        CheckResult(
            "no published message lost",
            f"every one of the {len(published)} published messages applied",
            f"{len(errors)} of {len(published)} never applied" if errors else "none lost",
            errors,
        ),
        during=delivered.timeline,
    )


def test_3_every_balance_adds_up(delivered: Delivered) -> None:
    expected: dict[str, int] = {}
    credits: Counter[str] = Counter()
    for body in delivered.published().values():
        expected[body["account"]] = expected.get(body["account"], 0) + body["amount"]
        credits[body["account"]] += 1
    errors = []
    for account in sorted(set(expected) | set(delivered.balances)):
        have, want = delivered.balances.get(account, 0), expected.get(account, 0)
        if have != want:
            off = (
                f"{dollars(have - want)} too much"
                if have > want
                else f"{dollars(want - have)} short"
            )
            errors.append(
                f"{account} holds {dollars(have)}; expected {dollars(want)}, the sum of its "
                f"{credits[account]} top-ups: {off}"
            )
    expect(
        CheckResult(
            "every balance adds up",
            "each account holds the sum of the top-ups published for it",
            f"{len(errors)} of {len(expected)} accounts wrong" if errors else "every balance right",
            errors,
        ),
        during=delivered.timeline,
    )


def test_4_every_message_acked_once_the_faults_heal(delivered: Delivered) -> None:
    errors = []
    if delivered.drained_after is None:
        errors = [
            f"message {m['id']} is still {m['state']} {DRAIN_BOUND:g} s after the faults healed; "
            f"{deliveries(m)}"
            for m in delivered.broker.values()
            if m["state"] != "acked"
        ]
    total = len(delivered.broker)
    observed = (
        f"{len(errors)} of {total} messages never acked"
        if errors
        else f"all {total} acked {delivered.drained_after or 0:.1f} s after the heal"
    )
    expect(
        CheckResult(
            "every message acked once the faults heal",
            f"the broker holds no unacked message within {DRAIN_BOUND:g} s of the heal "
            "(a message applied before must still be acked)",
            observed,
            errors,
        ),
        during=delivered.timeline,
    )
