"""The checks of structured-logs: orders placed through gateway -> orders -> inventory and
payments while the network and payments fail, then every service's log lines judged.

One scenario runs once for the module. Four clients place orders through the gateway, half
of them with an X-Request-Id of their own, each with a bearer token and a card number of its
own. The link from orders to inventory is calm, then slow (300 ms), then resets connections;
then payments answers 500 to every charge; then all is calm again. The checks judge the logs
the services wrote, found by the ids the clients sent (or the gateway answered with), against
what the harness recorded: the answers the clients got, and the requests (and their
X-Request-Id) that inventory and payments received. What the learner's services say about
themselves is judged, never believed.
"""

import itertools
import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    hold,
)

LEARNER = ("gateway", "orders")  # the services whose logs the learner writes
DOWNSTREAM = ("inventory", "payments")  # harness-owned: they record what they receive
HEADER = "x-request-id"
ROUTE = "/orders"

CLIENTS = 4
PAUSE = 0.02  # seconds a client waits between two orders
CALM = 0.4  # seconds before the faults, and after them
LATENCY_MS = 300  # orders -> inventory answers this late in the slow phase
SLOW = 1.0  # seconds of the slow phase at least: each client places 2 or 3 orders in it
SLOW_MAX = 6.0  # seconds at most: the phase lasts until SLOW_ORDERS orders ran whole in it
RESET = 0.6  # seconds of connections reset on orders -> inventory
DECLINE = 0.6  # seconds of payments answering 500
CLIENT_TIMEOUT = 10.0  # far beyond any answer: every order gets one
SKUS = ("sku-1", "sku-2", "sku-3", "sku-4")

# Logs reach the harness through a pipe (or Docker's log driver) a moment after the service
# wrote them. The checks read them once every judged request has its "how it ended" line in
# both services' logs, or, when some never come (a wrong fix), once the logs stopped growing.
LOG_WAIT = 8.0  # seconds at most
QUIET = 1.0  # seconds without a new line: nothing more is coming

# duration_ms must be a duration in milliseconds. A request that waited for inventory's
# 300 ms answer took at least that long, in every service on its way: its duration_ms is at
# least 90 % of 300 (a duration in seconds says 0.3). Nor can a service take longer than the
# client waited for it; twice that plus 1 s leaves room for any clock and any scheduler (a
# duration in microseconds is 1000 times too large).
SLOW_FLOOR_MS = LATENCY_MS * 0.9
# Orders that must have run from start to end in the slow phase (4 clients run about 8), so
# that check 2 has durations to judge against the floor.
MIN_SLOW = 2
SLOW_ORDERS = 4  # and the phase does not end before this many did, however busy the machine

LEVELS = {"debug", "info", "warning", "error", "critical"}
TIME_MARGIN = 300.0  # seconds a line's time may be off the run's (a wrong zone is hours off)
BASE_FIELDS = ("time", "level", "service", "message")
ACCESS_FIELDS = ("route", "status", "duration_ms")
SHOWN = 160  # characters of a log line shown in an error


# -- what the clients sent and got -----------------------------------------------------------
@dataclass
class Placed:
    """One order a client placed: what it sent, and what came back."""

    op: Operation
    phase: str

    @property
    def order(self) -> str:
        return str(self.op.value["order"])

    @property
    def sent_id(self) -> str | None:
        sent = self.op.value["id"]
        return str(sent) if sent else None

    @property
    def status(self) -> int | None:
        return self.op.result["status"] if isinstance(self.op.result, dict) else None

    @property
    def echoed(self) -> str | None:
        return self.op.result["echo"] if isinstance(self.op.result, dict) else None

    @property
    def latency_ms(self) -> float:
        return (self.op.latency or 0.0) * 1000

    def describe(self) -> str:
        how = "sent with its own id" if self.sent_id else "sent without an id"
        return f"order {self.order} ({how}, answered {self.status} {self.phase})"


def place_orders(url: str, numbers: Iterator[int]) -> Callable[[Client], None]:
    """The workload: each client places orders one after another, half of them with an id."""

    def workload(client: Client) -> None:
        order = f"o-{next(numbers)}"
        sent_id = str(uuid.UUID(int=client.rng.getrandbits(128), version=4))
        if client.rng.random() < 0.5:
            sent_id = ""
        token = f"tok_{client.rng.getrandbits(128):032x}"
        card = "4" + "".join(str(client.rng.randrange(10)) for _ in range(15))
        session = f"{client.rng.getrandbits(128):032x}"  # a browser's client: it has a session
        headers = {"Authorization": f"Bearer {token}", "Cookie": f"session={session}"}
        if sent_id:
            headers["X-Request-Id"] = sent_id
        body = {"order": order, "sku": client.rng.choice(SKUS), "qty": client.rng.randint(1, 3)}
        value = {"order": order, "id": sent_id or None, "token": token, "card": card}
        value["session"] = session
        with client.op("order", value) as op:
            response = client.http.post(url, json={**body, "card": card}, headers=headers)
            answer = {"status": response.status_code, "echo": response.headers.get(HEADER)}
            if response.status_code == 201:
                op.ok(answer)
            else:
                op.fail(f"HTTP {response.status_code}", answer)
        client.sleep(PAUSE)

    return workload


# -- what the services logged ----------------------------------------------------------------
@dataclass
class Line:
    """One line a service wrote: its place in the log, its text, and its JSON object if any."""

    number: int
    text: str
    data: dict[str, Any] | None

    @property
    def request_id(self) -> str | None:
        value = self.data.get("request_id") if self.data is not None else None
        return value if isinstance(value, str) and value else None

    @property
    def says_how_it_ended(self) -> bool:
        return self.data is not None and any(k in self.data for k in ACCESS_FIELDS)

    def shown(self) -> str:
        text = self.text if len(self.text) <= SHOWN else self.text[:SHOWN] + "..."
        return f"line {self.number}: {text}"


def parse(text: str, number: int) -> Line:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    return Line(number, text, data if isinstance(data, dict) else None)


@dataclass
class Log:
    """Every line of one service, and its lines by request id."""

    service: str
    lines: list[Line]
    by_id: dict[str, list[Line]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for line in self.lines:
            if line.request_id is not None:
                self.by_id.setdefault(line.request_id, []).append(line)

    def ended(self) -> set[str]:
        """The ids that have a line saying how their request ended."""
        return {rid for rid, lines in self.by_id.items() if any(x.says_how_it_ended for x in lines)}


def read_logs(lab: LabEnvironment, wanted: dict[str, set[str]]) -> dict[str, Log]:
    """Every service's log, once every wanted id's request has ended in it (or nothing more
    comes)."""
    services = [*LEARNER, *DOWNSTREAM]
    deadline = time.monotonic() + LOG_WAIT
    sizes: dict[str, int] = {}
    changed = time.monotonic()
    while True:
        logs = {
            s: Log(s, [parse(text, n) for n, text in enumerate(lab.log_lines(s), 1)])
            for s in services
        }
        if all(ids <= logs[s].ended() for s, ids in wanted.items()):
            return logs
        now = {s: len(log.lines) for s, log in logs.items()}
        if now != sizes:
            sizes, changed = now, time.monotonic()
        elif time.monotonic() - changed >= QUIET or time.monotonic() >= deadline:
            return logs
        time.sleep(0.1)


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario:
    """What the clients sent and got, what inventory and payments received, and the logs."""

    placed: list[Placed]
    received: dict[str, dict[str, list[str | None]]]  # service -> order -> X-Request-Id seen
    logs: dict[str, Log]
    faults: Faults
    slow_from: float
    slow_until: float
    wall: tuple[float, float]  # the run's span, wall-clock seconds

    def answered(self) -> list[Placed]:
        """The orders that got an answer (every one should: no fault is on the clients' link)."""
        return [p for p in self.placed if p.status is not None]

    def request_id(self, placed: Placed) -> str | None:
        """The id an order goes by: the one its client sent, else the one the gateway answered
        with, else the one inventory or payments received for it."""
        if placed.sent_id or placed.echoed:
            return placed.sent_id or placed.echoed
        for service in DOWNSTREAM:
            for seen in self.received[service].get(placed.order, []):
                if seen:
                    return seen
        return None

    def reached(self, placed: Placed) -> list[str]:
        """The services an order reached: the gateway and orders (no fault is on their links,
        and the gateway passes every order on), and inventory and payments if they got it."""
        return [*LEARNER, *(s for s in DOWNSTREAM if placed.order in self.received[s])]

    def slow(self, placed: Placed) -> bool:
        """Whether the order ran from start to end while inventory's answers were late."""
        end = placed.op.end
        return placed.op.start >= self.slow_from and end is not None and end <= self.slow_until


def answered(history: History, since: float) -> int:
    """The orders that started since `since` and got their answer."""
    return sum(1 for op in history.where(f="order", started_after=since) if op.end)


def phase_of(op: Operation, events: list[FaultEvent]) -> str:
    end = op.end if op.end is not None else op.start
    during = [e.description for e in events if e.overlaps(op.start, end)]
    return f"during {' and '.join(during)}" if during else "while all was calm"


def received_ids(lab: LabEnvironment, service: str) -> dict[str, list[str | None]]:
    """order -> the X-Request-Id of each request `service` received for it."""
    seen: dict[str, list[str | None]] = defaultdict(list)
    for request in HttpControl(lab, service).received():
        body, headers = request.get("body"), request.get("headers")
        if isinstance(body, dict) and isinstance(headers, dict) and "order" in body:
            lowered = {str(k).lower(): v for k, v in headers.items()}
            seen[str(body["order"])].append(lowered.get(HEADER))
    return seen


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    faults = Faults(lab_module)
    began = time.time()
    workload = place_orders(f"{lab_module.url('gateway')}/orders", itertools.count(1))
    with Traffic(chaoslab_seed).start(workload, clients=CLIENTS, timeout=CLIENT_TIMEOUT) as run:
        time.sleep(CALM)
        with faults.latency("orders -> inventory", LATENCY_MS):
            slow_from = time.monotonic()
            # On until SLOW_ORDERS orders were answered in it: check 2 judges them.
            hold(
                slow_from,
                at_least=SLOW,
                until=lambda: answered(run.history, slow_from) >= SLOW_ORDERS,
                at_most=SLOW_MAX,
            )
            slow_until = time.monotonic()  # before the heal: an answer it frees comes early
        with faults.reset("orders -> inventory"):
            time.sleep(RESET)
        with faults.http("payments", status=500, path="/charges"):
            time.sleep(DECLINE)
        time.sleep(CALM)
        history: History = run.stop()
    events = list(faults.timeline.events)
    placed = [Placed(op, phase_of(op, events)) for op in history.where(f="order")]
    received = {service: received_ids(lab_module, service) for service in DOWNSTREAM}
    recorded = Scenario(placed, received, {}, faults, slow_from, slow_until, (began, began))
    ids = {rid for p in recorded.answered() if (rid := recorded.request_id(p)) is not None}
    recorded.logs = read_logs(lab_module, dict.fromkeys(LEARNER, ids))
    recorded.wall = (began, time.time())
    return recorded


# -- the checks ------------------------------------------------------------------------------
def test_1_every_request_can_be_followed_by_its_id(scenario: Scenario) -> None:
    answered = scenario.answered()
    errors: list[str] = []
    shared: dict[str, list[str]] = defaultdict(list)
    followed = 0
    for placed in answered:
        rid = scenario.request_id(placed)
        if rid is None:
            errors.append(
                f"{placed.describe()}: it has no id anywhere: the gateway answered without "
                f"X-Request-Id, and neither inventory nor payments received one"
            )
            continue
        shared[rid].append(placed.order)
        problems = []
        if placed.echoed is None:
            problems.append("the gateway answered without X-Request-Id")
        elif placed.echoed != rid:
            problems.append(f"the gateway answered with X-Request-Id {placed.echoed!r}")
        for service in scenario.reached(placed):
            if service in LEARNER:
                if rid not in scenario.logs[service].by_id:
                    problems.append(f"{service} logged no line with it")
                continue
            for seen in scenario.received[service][placed.order]:
                if seen != rid:
                    problems.append(f"{service} received it with X-Request-Id {seen!r}")
        if problems:
            errors.append(f"{placed.describe()}, id {rid!r}: " + "; ".join(problems))
        else:
            followed += 1
    for rid, orders in shared.items():
        if len(orders) > 1:
            errors.append(
                f"orders {', '.join(orders)} all went by the id {rid!r}: one id must name "
                "one request"
            )
    unanswered = [p for p in scenario.placed if p.status is None]
    errors += [f"order {p.order} got no answer: {p.op.error}" for p in unanswered]
    without = sum(1 for p in answered if not p.sent_id)
    result = CheckResult(
        "every request can be followed by its id",
        "for every order, the id its client sent (or, sent without one, the id the gateway "
        "made and answered with in X-Request-Id) on at least one line of the gateway and of "
        "orders, and in the X-Request-Id that inventory and payments received, if it got "
        "that far; a different id for each order",
        f"{followed} of {len(answered)} orders followed through every service they reached "
        f"({without} were sent without an id)",
        errors,
    )
    expect(result.judging(p.op for p in answered), during=scenario.faults.timeline)


def line_problems(line: Line, service: str, wall: tuple[float, float]) -> list[str]:
    """What is wrong with one line's shape, as short phrases (none: it is fine)."""
    if line.data is None:
        return ["are not a JSON object"]
    data = line.data
    problems = [f"have no {name!r}" for name in BASE_FIELDS if name not in data]
    when = data.get("time")
    if "time" in data:
        try:
            at = datetime.fromisoformat(when) if isinstance(when, str) else None
        except ValueError:
            at = None
        if at is None:
            problems.append("have a 'time' that is not an ISO 8601 date and time")
        elif at.tzinfo is None:
            problems.append("have a 'time' without its UTC offset (e.g. +00:00 or Z)")
        elif not wall[0] - TIME_MARGIN <= at.timestamp() <= wall[1] + TIME_MARGIN:
            problems.append("have a 'time' that is not the time the line was written")
    level = data.get("level")
    if "level" in data and not (isinstance(level, str) and level.lower() in LEVELS):
        problems.append(f"have a 'level' that is not one of {', '.join(sorted(LEVELS))}")
    if "service" in data and data["service"] != service:
        problems.append(f"have a 'service' that is not {service!r}")
    if "message" in data and not isinstance(data["message"], str):
        problems.append("have a 'message' that is not a string")
    return problems


def ending_problems(line: Line, placed: Placed, slow: bool) -> list[str]:
    """What is wrong with a line that should say how `placed`'s request ended."""
    data = line.data or {}
    problems = [f"no {name!r}" for name in ACCESS_FIELDS if name not in data]
    if "route" in data and data["route"] != ROUTE:
        problems.append(f"'route' {data['route']!r}; expected {ROUTE!r}")
    if "status" in data and data["status"] != placed.status:
        problems.append(f"'status' {data['status']!r}; the client got {placed.status}")
    took = data.get("duration_ms")
    if "duration_ms" in data:
        if not isinstance(took, int | float) or isinstance(took, bool):
            problems.append(f"'duration_ms' {took!r} is not a number")
        elif took < 0 or took > 2 * placed.latency_ms + 1000:
            problems.append(
                f"'duration_ms' {took!r}, while the client waited {placed.latency_ms:.0f} ms "
                "for the whole request"
            )
        elif slow and took < SLOW_FLOOR_MS:
            problems.append(
                f"'duration_ms' {took!r}, while the request waited at least {LATENCY_MS} ms "
                "for inventory: is it in milliseconds?"
            )
    return problems


def possessive(service: str) -> str:
    return f"{service}'" if service.endswith("s") else f"the {service}'s"


def test_2_every_line_is_json_with_the_fields(scenario: Scenario) -> None:
    errors: list[str] = []
    lines = 0
    for service in LEARNER:
        log = scenario.logs[service]
        lines += len(log.lines)
        examples: dict[str, Line] = {}
        counts: Counter[str] = Counter()
        for line in log.lines:
            for problem in line_problems(line, service, scenario.wall):
                counts[problem] += 1
                examples.setdefault(problem, line)
        errors += [
            f"{counts[p]} {service} line{'s' if counts[p] > 1 else ''} {p}, e.g. "
            f"{examples[p].shown()}"
            for p in counts
        ]

    # The line that says how each request ended: judged for every order whose lines check 1
    # finds in a service (the ones it cannot find are check 1's failure, not this one's).
    judged: Counter[str] = Counter()
    slow_judged: Counter[str] = Counter()
    slow = [p for p in scenario.answered() if scenario.slow(p)]
    if len(slow) < MIN_SLOW:
        errors.append(
            f"only {len(slow)} orders ran from start to end while inventory answered late; "
            f"expected at least {MIN_SLOW} to judge duration_ms (was the machine very busy?)"
        )
    for placed in scenario.answered():
        rid = scenario.request_id(placed)
        late = scenario.slow(placed)
        for service in LEARNER:
            found = scenario.logs[service].by_id.get(rid or "")
            if not found:
                continue
            judged[service] += 1
            slow_judged[service] += late
            endings = [x for x in found if x.says_how_it_ended] or found
            verdicts = [(ending_problems(x, placed, late), x) for x in endings]
            problems, best = min(verdicts, key=lambda v: len(v[0]))
            if problems:
                errors.append(
                    f"{possessive(service)} lines for {placed.describe()}: none says how it "
                    f"ended; the closest has {'; '.join(problems)}: {best.shown()}"
                )
    result = CheckResult(
        "every line is JSON with the fields",
        "every line of the gateway and of orders one JSON object with time (ISO 8601 with "
        "its offset), level, service and message; and, for every order, a line in each that "
        f"says how it ended: route {ROUTE!r}, the status answered, and duration_ms in "
        "milliseconds",
        f"{lines} lines; the ending lines of {judged['gateway']} orders in the gateway and "
        f"{judged['orders']} in orders judged ({slow_judged['gateway']} and "
        f"{slow_judged['orders']} of them while inventory answered {LATENCY_MS} ms late)",
        errors,
    )
    expect(result, during=scenario.faults.timeline)


_HEX_RUN = re.compile(r"[0-9a-f]{32,}")
_DIGIT_RUN = re.compile(r"\d{16,}")


def leaks(text: str, secrets: dict[str, tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(what, order) of every secret in `text`: a token's 32 hex digits, a card's 16 digits,
    wherever they stand (in a header, a body, a message)."""
    for run, size in [(m.group(), 32) for m in _HEX_RUN.finditer(text)] + [
        (m.group(), 16) for m in _DIGIT_RUN.finditer(text)
    ]:
        for i in range(len(run) - size + 1):
            found = secrets.get(run[i : i + size])
            if found is not None:
                yield found


def test_3_no_line_leaks_a_secret(scenario: Scenario) -> None:
    secrets: dict[str, tuple[str, str]] = {}
    for placed in scenario.placed:
        secrets[placed.op.value["token"].removeprefix("tok_")] = ("bearer token", placed.order)
        secrets[placed.op.value["card"]] = ("card number", placed.order)
        secrets[placed.op.value["session"]] = ("session cookie", placed.order)
    errors: list[str] = []
    lines = 0
    for service, log in scenario.logs.items():
        lines += len(log.lines)
        leaked: dict[str, set[str]] = defaultdict(set)
        examples: dict[str, Line] = {}
        for line in log.lines:
            for what, order in leaks(line.text, secrets):
                leaked[what].add(order)
                examples.setdefault(what, line)
        errors += [
            f"{service} logged the {what} of {len(orders)} orders, e.g. {examples[what].shown()}"
            for what, orders in leaked.items()
        ]
    result = CheckResult(
        "no line leaks a secret",
        "no line of any service holds a client's bearer token, session cookie or card number "
        "(the last four digits are fine)",
        f"{lines} lines searched for the {len(scenario.placed)} orders' tokens, cookies and cards",
        errors,
    )
    expect(result, during=scenario.faults.timeline)
