"""The checks of at-least-once: top-ups published to a broker that delivers at least once, and
judged against what the consumer wrote down.

One scenario runs once for the module. Two publishers put top-up messages on the broker while a
seeded fault schedule runs five faults, in an order drawn from the seed:
- the consumer crashes right after its next database commit (a crash point, armed while it is
  idle): after the credit and before the ack, and in a consumer that commits a message in two
  transactions, between the two;
- the consumer crashes right after its second commit from then on, two messages published:
  after the next message's commit, and in a consumer that commits a message in three steps,
  between the second and the third;
- the broker takes an ack but holds its answer back, and the consumer is killed while it waits;
- acks are slowed past the lease, so the broker redelivers messages the consumer applied;
- every delivery reaches the consumer twice.
Each fault publishes a message of its own, so it always has one to act on. Then the faults
heal, the publishers stop, and the checks wait until the broker holds no unacknowledged
message. The four checks judge the broker's record and the consumer's accounts.
"""

import itertools
import random
import threading
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
    HttpControl,
    LabEnvironment,
    Schedule,
    Step,
    Timeline,
    Traffic,
    exactly_once,
    expect,
)

LEASE = 1.0  # seconds: the broker's visibility timeout (services/broker.py, LEASE_SECONDS)
ACK_DELAY_MS = 1500  # how long a slowed or held ack waits at the broker: well past the lease
PUBLISHERS = 2
PUBLISH_EVERY = 0.2  # seconds between one publisher's messages
ACCOUNTS = [f"acct-{n}" for n in range(1, 6)]
# Top-ups come in round amounts, so one account gets the same amount more than once in a run
# (5 accounts x 4 amounts: 20 bodies, for 20 to 40 messages): a message is its id, not its body.
AMOUNTS = [500, 1000, 2000, 5000]  # cents
# The crash point is armed while the consumer is idle (no message waits for its first delivery
# or its first ack), so that its next commit is the first one of a message, never the second of
# a consumer that commits twice.
QUIET_BOUND = 4.0  # seconds to wait for the queue to drain before arming (it takes < 2 s)
QUIET_SETTLE = 0.1  # and then for the consumer to finish what it does after its last ack
# A message delivered again and still not acked has been through the consumer already (it takes
# one message at a time), so the consumer has no first apply of it ahead: a correct consumer
# skips and acks it at once, and one that skips it without an ack (check 4) never will. Waiting
# for it would only wait out QUIET_BOUND.
STUCK_DELIVERIES = 2
FAULT_BOUND = 5.0  # seconds for a fault's own message to reach its point (it takes < 0.5 s)
DRAIN_BOUND = 4.0  # seconds after the heal by which every message must be acked (takes < 2 s)
SETTLE = 0.2  # seconds to let a last apply land after the queue drained
POLL = 0.05  # seconds between two reads of the broker's record while waiting on it


# -- the scenario ------------------------------------------------------------------------------
class Gate:
    """Lets the publishers publish, or pauses them: `closed()` also waits for a publish that
    is on its way, so that nothing lands on the broker while it is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = True

    @contextmanager
    def publishing(self) -> Iterator[bool]:
        """Whether a publisher may publish now; hold it while publishing."""
        with self._lock:
            yield self._open

    @contextmanager
    def closed(self) -> Iterator[None]:
        with self._lock:
            self._open = False
        try:
            yield
        finally:
            with self._lock:
                self._open = True


@dataclass
class Scenario:
    """What the faults need beside the lab: a message of their own to act on, a gate that
    pauses the publishers, and the broker's record of the requests it received."""

    lab: LabEnvironment
    faults: Faults
    publish: Callable[[], str]  # publishes one message now, returns its id
    gate: Gate

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """The publishers paused and the consumer idle: every message acked, but for those
        delivered again (STUCK_DELIVERIES), or QUIET_BOUND."""
        with self.gate.closed():
            wait_until_drained(self.lab, QUIET_BOUND, stuck=STUCK_DELIVERIES)
            time.sleep(QUIET_SETTLE)
            yield

    def wait_for(self, *requests: Callable[[dict[str, Any]], bool]) -> bool:
        """Until the broker has received, in this order, a request matching each predicate
        (or FAULT_BOUND); the order is the order in which it received them."""
        control = HttpControl(self.lab, "broker")
        deadline = time.monotonic() + FAULT_BOUND
        while time.monotonic() < deadline:
            pending = list(requests)
            for request in control.received():
                if pending and pending[0](request):
                    pending.pop(0)
            if not pending:
                return True
            time.sleep(0.02)
        return False


def ack(message: str | None = None, since: float = 0.0) -> Callable[[dict[str, Any]], bool]:
    """A request to match: the ack of `message` (any ack if None) received at or after `since`
    (wall clock, as the broker records it)."""

    def match(request: dict[str, Any]) -> bool:
        path = str(request["path"])
        return (
            request["method"] == "POST"
            and (path == f"/ack/{message}" if message else path.startswith("/ack/"))
            and float(request["time"]) >= since
        )

    return match


def poll(request: dict[str, Any]) -> bool:
    return request["method"] == "GET" and request["path"] == "/messages/next"


def crash_after_the_next_commit(s: Scenario) -> AbstractContextManager[object]:
    """The consumer dies right after its next database commit, before it acks. The broker
    redelivers the message; a consumer that commits the credit and the message id apart has
    one without the other. Armed while the consumer is idle, so the commit is a message's
    first."""

    @contextmanager
    def step() -> Iterator[None]:
        with s.quiet(), s.faults.crash_after_commit("consumer", nth=1) as point:
            s.publish()
            point.wait(timeout=FAULT_BOUND)
            yield  # down for the hold; restarted on the way out

    return step()


def crash_after_the_second_commit(s: Scenario) -> AbstractContextManager[object]:
    """The consumer dies right after its second database commit from now; two messages are
    published, so that a consumer that commits a message once dies after the second one's
    commit (harmless), and one that commits a message in three steps (claim, credit, done)
    dies between the credit and the last: its redelivery must not credit again."""

    @contextmanager
    def step() -> Iterator[None]:
        with s.quiet(), s.faults.crash_after_commit("consumer", nth=2) as point:
            s.publish()
            s.publish()
            point.wait(timeout=FAULT_BOUND)
            yield  # down for the hold; restarted on the way out

    return step()


def crash_while_the_ack_answer_is_held(s: Scenario) -> AbstractContextManager[object]:
    """The broker takes an ack at once but holds its answer back; the consumer is killed as
    soon as the broker has taken the ack of the step's own message, a first delivery (an ack
    of a redelivery would prove nothing: that message was applied the first time). A consumer
    that applies before it acks loses nothing; one that acks first loses that message."""

    @contextmanager
    def step() -> Iterator[None]:
        try:
            # The queue drains first, so the step's message is not queued behind others, each
            # of which would hold the consumer for ACK_DELAY_MS.
            with (
                s.quiet(),
                s.faults.http("broker", path="/ack", response_delay_ms=ACK_DELAY_MS),
            ):
                s.wait_for(ack(s.publish()))
                s.faults.kill("consumer")
                yield
        finally:
            s.faults.restart("consumer")

    return step()


def slow_acks(s: Scenario) -> AbstractContextManager[object]:
    """Acks wait past the lease: refused (409), and the broker redelivers what was applied.
    Held until an ack is on its way (the step publishes a message, so there is one)."""

    @contextmanager
    def step() -> Iterator[None]:
        with s.faults.http("broker", path="/ack", delay_ms=ACK_DELAY_MS):
            since = time.time()
            s.publish()
            s.wait_for(ack(since=since))
            yield

    return step()


def deliver_twice(s: Scenario) -> AbstractContextManager[object]:
    """Every answer to a poll is sent again to the next poll: the same delivery, twice. Held
    until the consumer acked the step's own message and polled again (and got it again)."""

    @contextmanager
    def step() -> Iterator[None]:
        with s.faults.http("broker", path="/messages/next", method="GET", duplicate=True):
            s.wait_for(ack(s.publish()), poll)
            yield

    return step()


StepMaker = Callable[[Scenario], AbstractContextManager[object]]
MENU: dict[str, tuple[StepMaker, tuple[float, float], float]] = {
    # name: (fault, its hold range in seconds, about how long it takes beyond its hold)
    "crash the consumer right after its next database commit": (
        crash_after_the_next_commit,
        (0.1, 0.2),
        0.5,  # the queue drains, then the restart (about 0.4 s)
    ),
    "crash the consumer right after its second database commit": (
        crash_after_the_second_commit,
        (0.1, 0.2),
        0.6,  # the queue drains, two messages, then the restart (about 0.4 s)
    ),
    "crash the consumer while the answer to its ack is held back": (
        crash_while_the_ack_answer_is_held,
        (0.1, 0.2),
        0.5,  # the queue drains, then the restart (about 0.4 s)
    ),
    f"acks delayed {ACK_DELAY_MS} ms (the lease is {LEASE:g} s)": (slow_acks, (0.2, 0.3), 0.0),
    "every delivery sent twice": (deliver_twice, (0.2, 0.3), 0.0),
}


def fault_schedule(seed: int, scenario: Scenario) -> Schedule:
    """The five faults, in a seeded order, with seeded holds and gaps. A step that overruns its
    estimate (a slow restart) delays the next one, which then starts at once."""
    rng = random.Random(f"at-least-once:{seed}")
    plan = list(MENU)
    rng.shuffle(plan)
    steps = []
    at = rng.uniform(0.1, 0.2)
    for name in plan:
        make, holds, extra = MENU[name]
        hold = round(rng.uniform(*holds), 2)
        steps.append(Step(round(at, 2), hold, name, lambda _f, make=make: make(scenario)))
        at += hold + extra + rng.uniform(0.05, 0.15)
    return Schedule(tuple(steps), seed)


# -- the producer ------------------------------------------------------------------------------
def top_up(rng: random.Random, numbers: Iterator[int]) -> dict[str, Any]:
    """One top-up message: a fresh id, a random account and amount (cents)."""
    return {
        "id": f"m-{next(numbers)}",
        "body": {"account": rng.choice(ACCOUNTS), "amount": rng.choice(AMOUNTS)},
    }


def publish(client: Client, url: str, numbers: Iterator[int], gate: Gate) -> None:
    with gate.publishing() as open_:
        if open_:
            message = top_up(client.rng, numbers)
            with client.op("publish", message) as op:
                response = client.http.post(url, json=message)
                if response.status_code not in (200, 201):
                    op.fail(f"HTTP {response.status_code}: {response.text[:200]}")
    client.sleep(PUBLISH_EVERY if open_ else 0.05)


def publisher(url: str, numbers: Iterator[int], seed: int) -> Callable[[], str]:
    """Publish one message now, for a fault that needs one to act on; returns its id."""
    rng = random.Random(f"at-least-once:faults:{seed}")

    def publish_one() -> str:
        message = top_up(rng, numbers)
        response = httpx.post(url, json=message, timeout=5.0, trust_env=False)
        response.raise_for_status()
        return str(message["id"])

    return publish_one


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


def wait_until_drained(lab: LabEnvironment, bound: float, stuck: int | None = None) -> float | None:
    """Seconds until the broker holds no unacknowledged message, or None after `bound`. With
    `stuck`, a message delivered that many times without an ack does not count."""
    start = time.monotonic()
    while time.monotonic() - start < bound:
        if all(
            m["state"] == "acked" or (stuck is not None and len(m["deliveries"]) >= stuck)
            for m in broker_record(lab).values()
        ):
            return time.monotonic() - start
        time.sleep(POLL)
    return None


@pytest.fixture(scope="module")
def delivered(lab_module: LabEnvironment, chaoslab_seed: int) -> Delivered:
    faults = Faults(lab_module)
    url = f"{lab_module.url('broker')}/messages"
    numbers = itertools.count(1)
    gate = Gate()
    scenario = Scenario(lab_module, faults, publisher(url, numbers, chaoslab_seed), gate)
    schedule = fault_schedule(chaoslab_seed, scenario)
    with Traffic(chaoslab_seed).start(
        lambda client: publish(client, url, numbers, gate), clients=PUBLISHERS
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
