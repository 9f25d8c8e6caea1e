"""The checks of outbox-projection: orders written through crashes of every service, and a read
model judged against the orders table.

Check 1 judges one scenario, run once for the module: three clients place and amend orders
while the relay is killed (orders cannot publish) and, while it is still down, orders is killed
too (between two requests); then both come back. Checks 2 to 6 each try one thing on orders of
their own: orders crashing right after its commit, and while the relay holds its answer to a
publish; a delivery the projection applied but the relay did not hear of (the projection
crashing right after its commit; the relay crashing before it writes the delivery down); events
delivered newest first; the whole log replayed from position 1; the projection paused. Check 7
places orders while the link from orders to the relay is down, orders running on.

Every verdict compares two harness-side records: the orders table (orders' SQLite file, read
directly) and the projection's GET /revenue; the relay's log says how each event was delivered.
Nothing else the learner's services say about themselves is evidence.
"""

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
    Timeline,
    Traffic,
    expect,
)

WRITERS = 3
CUSTOMERS = [f"shop-{n}" for n in range(1, 6)]
AMOUNTS = range(100, 10_000, 50)  # cents
CALM = 0.2  # seconds of writing before the relay is killed, and after it is back
RELAY_DOWN = 0.3  # seconds the relay is down before orders is killed (writes go on meanwhile)
# Seconds after the faults heal (or a check's act) by which the read model must equal the
# orders table and the relay hold no pending event. A correct pair takes well under a second:
# the outbox is sent within 0.1 s of the relay's return, each delivery takes a few
# milliseconds, and a refused early event comes back 0.1 to 0.5 s later.
SETTLE_BOUND = 3.0
QUIET_BOUND = 2.0  # seconds to wait for the previous check's events to be delivered
# Before a crash point is armed in orders: time for orders to finish what it does after the
# relay's answer (write down that the event is sent), so that its next commit is the check's.
QUIET_SETTLE = 0.2
# A check stops waiting sooner once nothing has changed (the read model, the orders table, what
# the projection has taken) for this long: an event lost before it reached the relay never
# comes, while a correct pair changes something at least every 0.5 s (the relay's longest wait
# before it delivers a refused event again) until it agrees.
STABLE = 1.0
QUIET_STABLE = 0.3  # the same, before a check starts: what the last check left is settled
POLL = 0.03
# How long orders may take to get a change's event into the relay's log, where a check waits
# for it (the reference takes milliseconds); and, in check 2, how long the relay holds its
# answer to a publish while orders is killed.
PUBLISH_WITHIN = 2.0
PUBLISH_HOLD_MS = 1000
# Check 3: the crashing services die within milliseconds of the point; 5 s is slack.
CRASH_WITHIN = 5.0
# Check 6: the projection is paused this long (the relay's delivery timeout is 0.3 s, so the
# first event sent meanwhile times out at least once and is delivered again), then must catch
# up within CATCH_UP seconds (a correct projection takes about 0.2 s for the 6 events).
PAUSE = 1.0
CATCH_UP = 2.0
# Check 7: seconds the link from orders to the relay stays down after the orders are placed
# (a correct orders tries again meanwhile, and succeeds once it is back).
OUT_OF_REACH = 0.3


# -- the records -------------------------------------------------------------------------------
@dataclass
class Order:
    id: str
    customer: str
    amount: int
    version: int


def orders_table(lab: LabEnvironment) -> dict[str, Order]:
    """The orders table, read straight from orders' SQLite file (read only)."""
    path = lab.state_dir("orders") / "orders.db"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = db.execute("SELECT id, customer, amount, version FROM orders").fetchall()
    except sqlite3.OperationalError as exc:
        raise CheckFailed(
            CheckResult(
                "the orders table can be read",
                "orders keeps its orders in $STATE_DIR/orders.db, table orders (id, customer, "
                "amount, version), as the starter does",
                f"{type(exc).__name__}: {exc}",
                ["the checks cannot read the orders table"],
            )
        ) from exc
    finally:
        db.close()
    return {row[0]: Order(*row) for row in rows}


def read_model(lab: LabEnvironment) -> dict[str, int]:
    """The projection's GET /revenue, or a verdict that says how it breaks the contract."""
    try:
        data = httpx.get(f"{lab.direct_url('projection')}/revenue", timeout=5.0).json()
        return {str(customer): int(cents) for customer, cents in data.items()}
    except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:
        raise CheckFailed(
            CheckResult(
                "the projection shows its read model",
                'GET /revenue answers {"<customer>": <cents>, ...} (see the README)',
                f"{type(exc).__name__}: {exc}",
                ["the checks cannot read the read model"],
            )
        ) from exc


def relay_log(lab: LabEnvironment) -> list[dict[str, Any]]:
    return list(httpx.get(f"{lab.direct_url('relay')}/log", timeout=5.0).json())


def relay_control(lab: LabEnvironment, what: str, body: dict[str, Any] | None = None) -> None:
    url = f"{lab.direct_url('relay')}/control/{what}"
    httpx.post(url, json=body or {}, timeout=5.0).raise_for_status()


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


@dataclass
class Picture:
    """The orders table and the read model for some customers, and the relay's log, at once."""

    truth: dict[str, int]  # customer -> what the orders table adds up to
    model: dict[str, int]  # customer -> what GET /revenue says
    orders: dict[str, Order]
    log: list[dict[str, Any]]

    @property
    def pending(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log if not entry["taken"]]

    @property
    def complete(self) -> bool:
        """Whether every version of every order in the table is in the relay's log, and taken
        or refused for good (nothing pending): nothing more will come."""
        logged = {(e["event"]["order"], e["event"]["version"]) for e in self.log}
        every = {(o.id, n) for o in self.orders.values() for n in range(1, o.version + 1)}
        return every <= logged and not self.pending

    @property
    def agrees(self) -> bool:
        return self.model == self.truth and not self.pending

    def delivery_story(self, order: str) -> str:
        """How the relay delivered an order's events: `o-4: v1 delivered 2 times (...)`."""
        parts = []
        for entry in self.log:
            if entry["event"]["order"] != order:
                continue
            answers = [
                d["outcome"] or "the relay died before it heard" for d in entry["deliveries"]
            ]
            shown = "; ".join(short(a) for a in answers[:3]) + ("; ..." if len(answers) > 3 else "")
            times = "once" if len(answers) == 1 else f"{len(answers)} times"
            state = "" if entry["taken"] else ", still pending"
            version = f"v{entry['event']['version']}"
            if answers:
                parts.append(f"{version} delivered {times} ({shown}){state}")
            else:
                parts.append(f"{version} not delivered yet")
        return f"{order}: " + (", ".join(parts) if parts else "no event in the relay's log")

    def plain(self, order: Order) -> bool:
        """Whether each of the order's versions was delivered once, in order, and taken."""
        entries = [e for e in self.log if e["event"]["order"] == order.id]
        return [e["event"]["version"] for e in entries] == list(
            range(1, order.version + 1)
        ) and all(e["taken"] and len(e["deliveries"]) == 1 for e in entries)

    def errors(self) -> list[str]:
        errors = []
        for customer in sorted(set(self.truth) | set(self.model)):
            have, want = self.model.get(customer), self.truth.get(customer, 0)
            if have == want or (have is None and want == 0):
                continue
            theirs = [o for o in self.orders.values() if o.customer == customer]
            listed = ", ".join(f"{o.id} {dollars(o.amount)} (version {o.version})" for o in theirs)
            told = [o for o in theirs if not self.plain(o)] or theirs
            says = dollars(have) if have is not None else "nothing"
            errors.append(
                f"{customer}: the read model says {says}; the orders table adds up to "
                f"{dollars(want)}"
                + (f" ({listed})" if listed else " (no order)")
                + "".join(f"; {self.delivery_story(o.id)}" for o in told)
            )
        for entry in self.pending:
            event = entry["event"]
            last = entry["deliveries"][-1]["outcome"] if entry["deliveries"] else "not delivered"
            errors.append(
                f"event {event['id']} ({event['type']} v{event['version']} of {event['order']}) "
                f"is still pending at the relay after {len(entry['deliveries'])} deliveries; "
                f"the last answer: {short(last or 'none')}"
            )
        return errors

    def describe(self) -> str:
        if self.agrees:
            return f"the read model equals the orders table for all {len(self.truth)} customers"
        wrong = sum(
            1
            for c in set(self.truth) | set(self.model)
            if self.model.get(c, 0) != self.truth.get(c, 0)
        )
        return (
            f"{wrong} of {len(set(self.truth) | set(self.model))} customers wrong, "
            f"{len(self.pending)} events pending at the relay"
        )


def short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def picture(lab: LabEnvironment, wanted: Callable[[str], bool]) -> Picture:
    """The records, read in this order: the orders table, the relay's log, the read model. A
    relay log with nothing pending, read before the read model, means every event it names was
    applied (or refused for good) before the read model was read."""
    orders = {k: o for k, o in orders_table(lab).items() if wanted(o.customer)}
    log = [
        e
        for e in relay_log(lab)
        if e["event"]["order"] in orders or wanted(str(e["event"].get("customer", "")))
    ]
    truth: dict[str, int] = {}
    for order in orders.values():
        truth[order.customer] = truth.get(order.customer, 0) + order.amount
    model = {c: cents for c, cents in read_model(lab).items() if wanted(c)}
    return Picture(truth, model, orders, log)


def settle(
    lab: LabEnvironment, wanted: Callable[[str], bool], bound: float
) -> tuple[Picture, float | None]:
    """Wait until the read model equals the orders table for the wanted customers and the relay
    holds nothing pending; the last picture, and the seconds it took (None if it did not).
    Gives up after `bound` seconds; once every event of the table's orders is in the relay's
    log and none is pending (nothing more will come); or once nothing has changed (the read
    model, the orders table, what the projection has taken) for STABLE seconds with nothing
    pending at the relay: an event lost before it reached the relay never comes."""
    start = time.monotonic()
    last: object = None
    since = start
    while True:
        seen = picture(lab, wanted)
        now = time.monotonic()
        if seen.agrees:
            return seen, now - start
        state = (seen.model, seen.truth, [(e["position"], e["taken"]) for e in seen.log])
        # An event pending at the relay is coming again (the relay keeps delivering it, the
        # projection may still be restarting): wait for it up to the bound, not just STABLE.
        pending = any(not e["taken"] for e in seen.log)
        if state != last:
            last, since = state, now
        elif seen.complete or (now - since >= STABLE and not pending) or now - start > bound:
            return seen, None
        time.sleep(POLL)


def customers(*names: str) -> Callable[[str], bool]:
    return lambda customer: customer in names


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda customer: customer.startswith(prefix)


def everyone(customer: str) -> bool:
    return True


def quiet(lab: LabEnvironment, then: float = 0.0) -> None:
    """Let the previous check's events reach the projection before the next check starts:
    until every order's current version is in the relay's log and taken, or nothing changed
    for QUIET_STABLE seconds (or QUIET_BOUND); then `then` seconds more."""
    start = time.monotonic()
    last: object = None
    since = start
    while time.monotonic() - start < QUIET_BOUND:
        log = relay_log(lab)
        published = {(e["event"]["order"], e["event"]["version"]) for e in log}
        versions = {(o.id, o.version) for o in orders_table(lab).values()}
        if all(e["taken"] for e in log) and versions <= published:
            break
        state = (published, versions, {e["position"] for e in log if e["taken"]})
        pending = any(not e["taken"] for e in log)
        if state != last:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= QUIET_STABLE and not pending:
            break
        time.sleep(POLL)
    time.sleep(then)


# -- the client's side -------------------------------------------------------------------------
def place(http: httpx.Client, lab: LabEnvironment, order: str, customer: str, amount: int) -> str:
    """POST /orders; the answer in words."""
    try:
        answer = http.post(
            f"{lab.url('orders')}/orders",
            json={"order": order, "customer": customer, "amount": amount},
            timeout=5.0,
        )
    except httpx.TransportError as exc:
        return f"no answer ({type(exc).__name__})"
    return f"{answer.status_code}"


def amend(http: httpx.Client, lab: LabEnvironment, order: str, amount: int) -> str:
    try:
        answer = http.patch(
            f"{lab.url('orders')}/orders/{order}", json={"amount": amount}, timeout=5.0
        )
    except httpx.TransportError as exc:
        return f"no answer ({type(exc).__name__})"
    return f"{answer.status_code}"


class Gate:
    """Lets the writers write, or stops them: `closed()` also waits for a write on its way, so
    that orders is idle while it is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = True

    @contextmanager
    def writing(self) -> Iterator[bool]:
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


def writer(base: str, numbers: Iterator[int], gate: Gate) -> Callable[[Client], None]:
    """The workload: place an order, or change the amount of one this client placed."""
    placed: dict[int, list[str]] = {}

    def write(client: Client) -> None:
        mine = placed.setdefault(client.id, [])
        with gate.writing() as open_:
            if open_:
                amount = client.rng.choice(AMOUNTS)
                if not mine or client.rng.random() < 0.5:
                    order = f"o-{next(numbers)}"
                    customer = client.rng.choice(CUSTOMERS)
                    with client.op(
                        "place", {"order": order, "customer": customer, "amount": amount}
                    ) as op:
                        answer = client.http.post(
                            f"{base}/orders",
                            json={"order": order, "customer": customer, "amount": amount},
                        )
                        if answer.status_code != 201:
                            op.fail(f"HTTP {answer.status_code}")
                    mine.append(order)
                else:
                    order = client.rng.choice(mine)
                    with client.op("amend", {"order": order, "amount": amount}) as op:
                        answer = client.http.patch(
                            f"{base}/orders/{order}", json={"amount": amount}
                        )
                        if answer.status_code != 200:
                            op.fail(f"HTTP {answer.status_code}")
        client.sleep(0.02 if open_ else 0.05)

    return write


# -- check 1's scenario ------------------------------------------------------------------------
@dataclass
class Scenario:
    picture: Picture
    settled_after: float | None
    writes: int
    timeline: Timeline


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    faults = Faults(lab_module)
    gate = Gate()
    with Traffic(chaoslab_seed).start(
        writer(lab_module.url("orders"), itertools.count(1), gate), clients=WRITERS, timeout=2.0
    ) as run:
        time.sleep(CALM)
        with gate.closed():  # no write waits on the relay as it dies
            faults.kill("relay")
        time.sleep(RELAY_DOWN)
        with gate.closed():
            faults.kill("orders")
        # Both come back at once (a restart takes about 0.3 s).
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(faults.restart, ["orders", "relay"]))
        time.sleep(CALM)
        history = run.stop()
    seen, after = settle(lab_module, starts_with("shop-"), SETTLE_BOUND)
    return Scenario(seen, after, len(history.where(status="ok")), faults.timeline)


# -- the checks --------------------------------------------------------------------------------
def test_1_read_model_matches_the_orders(scenario: Scenario) -> None:
    seen = scenario.picture
    expect(
        CheckResult(
            "the read model matches the orders",
            f"within {SETTLE_BOUND:g} s of the heal, each customer's revenue in the read model "
            "equals the sum of their orders in the orders table, and the relay holds no "
            "pending event",
            f"{seen.describe()} ({len(seen.orders)} orders, {scenario.writes} writes answered)",
            seen.errors(),
        ),
        during=scenario.timeline,
    )


@dataclass
class Act:
    """One act of a check: what was done to whom, and the picture after it settled."""

    what: str
    picture: Picture
    note: str = ""

    def plain(self, order: Order) -> bool:
        """Whether each of the order's versions was delivered once, in order, and taken."""
        entries = [e for e in self.log if e["event"]["order"] == order.id]
        return [e["event"]["version"] for e in entries] == list(
            range(1, order.version + 1)
        ) and all(e["taken"] and len(e["deliveries"]) == 1 for e in entries)

    def errors(self) -> list[str]:
        return [f"after {self.what}: {error}" for error in self.picture.errors()]

    def describe(self) -> str:
        return f"{self.what}{self.note}: {self.picture.describe()}"


def test_2_no_event_lost_when_orders_crashes_before_publishing(
    lab: LabEnvironment, faults: Faults
) -> None:
    quiet(lab, QUIET_SETTLE)
    acts = []
    with httpx.Client(trust_env=False) as http:
        # Act 1: orders dies right after the commit that wrote the order, before any publish.
        with faults.crash_after_commit("orders", nth=1) as point:
            answer = place(http, lab, "o-outbox-1", "outbox-1", 1500)
            fired = point.fired and point.wait(timeout=CRASH_WITHIN)
        note = (
            f" (the client got {answer})"
            if fired
            else " (never happened: orders committed nothing)"
        )
        seen, _ = settle(lab, customers("outbox-1"), SETTLE_BOUND)
        acts.append(Act("orders crashed right after its 1st commit for o-outbox-1", seen, note))

        # Act 2: the relay takes the event but holds its answer; orders is killed waiting.
        quiet(lab, QUIET_SETTLE)
        with (
            ThreadPoolExecutor(1) as pool,
            faults.http(
                "relay", path="/events", method="POST", response_delay_ms=PUBLISH_HOLD_MS, first=1
            ),
        ):
            pool.submit(place, http, lab, "o-outbox-2", "outbox-2", 3500)
            deadline = time.monotonic() + PUBLISH_WITHIN
            published = False
            while not published and time.monotonic() < deadline:
                published = any(e["event"]["order"] == "o-outbox-2" for e in relay_log(lab))
                time.sleep(0.02)
            faults.kill("orders")
            faults.restart("orders")
        note = "" if published else f" (the relay got no event within {PUBLISH_WITHIN:g} s)"
        seen, _ = settle(lab, customers("outbox-2"), SETTLE_BOUND)
        acts.append(
            Act("orders killed while the relay held its answer to o-outbox-2's event", seen, note)
        )

    expect(
        CheckResult(
            "no event lost when orders crashes between writing an order and publishing it",
            f"after each crash, within {SETTLE_BOUND:g} s, the read model equals the orders "
            "table: an order in the table has its event delivered, and no event for an order "
            "the table does not have",
            "; ".join(act.describe() for act in acts),
            [error for act in acts for error in act.errors()],
        ),
        during=faults.timeline,
    )


def deliveries_of(seen: Picture, order: str) -> int:
    return sum(
        len(e["deliveries"])
        for e in seen.log
        if e["event"]["order"] == order and e["event"]["version"] == 1
    )


def test_3_a_redelivered_event_counts_once(lab: LabEnvironment, faults: Faults) -> None:
    quiet(lab)
    acts = []
    with httpx.Client(trust_env=False) as http:
        # Act 1: the projection dies right after its commit of the event: the relay never hears.
        with faults.crash_after_commit("projection", nth=1) as point:
            place(http, lab, "o-redeliver-1", "redeliver-1", 2000)
            fired = point.wait(timeout=CRASH_WITHIN)
        seen, _ = settle(lab, customers("redeliver-1"), SETTLE_BOUND)
        note = (
            f" (delivered {deliveries_of(seen, 'o-redeliver-1')} times)"
            if fired
            else " (never happened: the projection committed nothing)"
        )
        acts.append(
            Act("the projection crashed right after its commit of o-redeliver-1", seen, note)
        )

        # Act 2: the relay dies after the projection took the event, before writing that down.
        quiet(lab)
        relay_control(lab, "crash-after-delivery", {"order": "o-redeliver-2", "version": 1})
        place(http, lab, "o-redeliver-2", "redeliver-2", 3000)
        deadline = time.monotonic() + CRASH_WITHIN
        died = False
        while not died and time.monotonic() < deadline:
            try:
                httpx.get(f"{lab.direct_url('relay')}/health", timeout=1.0)
                time.sleep(0.02)
            except httpx.TransportError:
                died = True
        faults.kill("relay")  # on the timeline, and sure to be down
        faults.restart("relay")
        seen, _ = settle(lab, customers("redeliver-2"), SETTLE_BOUND)
        note = (
            f" (delivered {deliveries_of(seen, 'o-redeliver-2')} times)"
            if died
            else " (never happened: the projection did not take the event)"
        )
        acts.append(
            Act("the relay crashed right after the projection took o-redeliver-2", seen, note)
        )

    expect(
        CheckResult(
            "a redelivered event counts once",
            f"after each crash, within {SETTLE_BOUND:g} s, the read model equals the orders "
            "table (the event delivered again changes nothing)",
            "; ".join(act.describe() for act in acts),
            [error for act in acts for error in act.errors()],
        ),
        during=faults.timeline,
    )


def test_4_events_out_of_order_are_applied_in_order(lab: LabEnvironment, faults: Faults) -> None:
    quiet(lab)
    wanted = customers("disorder-1", "disorder-2")
    relay_control(lab, "hold")
    try:
        with httpx.Client(trust_env=False) as http:
            place(http, lab, "o-disorder-a", "disorder-1", 1000)
            place(http, lab, "o-disorder-b", "disorder-2", 2000)
            amend(http, lab, "o-disorder-a", 1500)
            amend(http, lab, "o-disorder-b", 2500)
            amend(http, lab, "o-disorder-a", 3000)
        deadline = time.monotonic() + PUBLISH_WITHIN
        while len(picture(lab, wanted).log) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        relay_control(lab, "order", {"newest_first": True})
        event = faults.timeline.open("the relay delivers each round newest first")
        relay_control(lab, "release")
        seen, _ = settle(lab, wanted, SETTLE_BOUND)
        event.end = time.monotonic()
    finally:
        relay_control(lab, "order", {"newest_first": False})
        relay_control(lab, "release")
    expect(
        CheckResult(
            "events out of order are applied in order",
            "o-disorder-a placed at $10.00 and changed to $15.00 then $30.00, o-disorder-b "
            "placed at $20.00 and changed to $25.00; with every event delivered newest first, "
            f"within {SETTLE_BOUND:g} s the read model says $30.00 for disorder-1 and $25.00 for "
            "disorder-2, as the orders table does",
            seen.describe(),
            seen.errors(),
        ),
        during=faults.timeline,
    )


def test_5_replaying_the_log_changes_nothing(lab: LabEnvironment, faults: Faults) -> None:
    quiet(lab)
    with httpx.Client(trust_env=False) as http:
        place(http, lab, "o-replay-1", "replay-1", 4000)
        amend(http, lab, "o-replay-1", 4500)
        place(http, lab, "o-replay-2", "replay-2", 5000)
    settle(lab, starts_with("replay-"), SETTLE_BOUND)
    before = picture(lab, everyone)
    # Only what was right is judged: a customer an earlier check left wrong is that check's
    # failure, and a replay may well repair it.
    right = {c for c in before.truth if before.model.get(c) == before.truth[c]}
    replayed = {e["position"] for e in before.log if e["taken"]}
    event = faults.timeline.open("the relay delivers its whole log again, from position 1")
    started = time.time()
    relay_control(lab, "replay")
    deadline = time.monotonic() + SETTLE_BOUND
    while True:
        log = [e for e in relay_log(lab) if e["position"] in replayed]
        done = all(e["taken"] and e["deliveries"][-1]["sent"] >= started for e in log)
        if done or time.monotonic() > deadline:
            break
        time.sleep(POLL)
    event.end = time.monotonic()
    after = read_model(lab)
    errors = [
        f"{customer}: the read model said {dollars(before.model[customer])} before the replay, "
        f"as the orders table does, and {dollars(after.get(customer, 0))} after it"
        for customer in sorted(right)
        if after.get(customer, 0) != before.model[customer]
    ]
    errors += [
        f"event {e['event']['id']} was not taken again within {SETTLE_BOUND:g} s; the last "
        f"answer: {short(e['deliveries'][-1]['outcome'] or 'none')}"
        for e in log
        if not e["taken"]
    ]
    if not right:
        errors.append(
            "no customer's revenue was right before the replay; expected replay-1 and "
            "replay-2 at least"
        )
    expect(
        CheckResult(
            "replaying the log changes nothing",
            f"the relay delivers again, from position 1, all {len(replayed)} events the "
            "projection took; each is taken again, and every customer whose revenue was right "
            "before the replay is unchanged",
            f"{len(errors)} differences"
            if errors
            else f"all {len(right)} customers that were right are unchanged",
            errors,
        ),
        during=faults.timeline,
    )


def test_6_the_projection_catches_up_after_a_pause(lab: LabEnvironment, faults: Faults) -> None:
    quiet(lab)
    wanted = starts_with("catchup-")
    with httpx.Client(trust_env=False) as http, faults.pause("projection"):
        paused = time.monotonic()
        for n in range(6):
            place(http, lab, f"o-catchup-{n + 1}", f"catchup-{n % 3 + 1}", 1000 + 250 * n)
        time.sleep(max(0.0, PAUSE - (time.monotonic() - paused)))
    seen, after = settle(lab, wanted, CATCH_UP)
    errors = seen.errors()
    if after is None and not errors:
        errors.append(f"the projection did not catch up within {CATCH_UP:g} s")
    expect(
        CheckResult(
            "the projection catches up after a pause",
            f"the projection paused {PAUSE:g} s while 6 orders were placed; within {CATCH_UP:g} "
            "s of its resume the read model equals the orders table, each event counted once "
            "though the relay delivered it again after a timeout",
            seen.describe() + (f", {after:.1f} s after the resume" if after is not None else ""),
            errors,
        ),
        during=faults.timeline,
    )


def test_7_an_event_waits_out_a_relay_out_of_reach(lab: LabEnvironment, faults: Faults) -> None:
    quiet(lab, QUIET_SETTLE)
    with httpx.Client(trust_env=False) as http:
        with faults.down("orders -> relay"):
            answers = [
                place(http, lab, f"o-unreachable-{n + 1}", "unreachable-1", 2000 + 500 * n)
                for n in range(2)
            ]
            time.sleep(OUT_OF_REACH)
        seen, after = settle(lab, customers("unreachable-1"), SETTLE_BOUND)
    expect(
        CheckResult(
            "an event waits out a relay out of reach",
            "orders, up and running, places 2 orders while its link to the relay is down (and "
            f"{OUT_OF_REACH:g} s more); within {SETTLE_BOUND:g} s of the link's return, with no "
            "restart and no later write to prompt it, the read model equals the orders table",
            f"the client got {', '.join(answers)}; {seen.describe()}"
            + (f", {after:.1f} s after the link came back" if after is not None else ""),
            seen.errors(),
        ),
        during=faults.timeline,
    )
