"""The checks of tracing: orders placed through gateway -> orders -> cache and inventory while
the network and inventory fail, then every trace in the run's Jaeger judged.

One scenario runs once for the module. Four clients place orders through the gateway, each
order with a W3C traceparent header of its own: a trace id and a parent span id the harness
made, sampled for about three orders in four and not sampled for the others (the flag at the
end of the header, -01 or -00). The link from orders to inventory is calm, then slow (300 ms),
then inventory answers 503 to every reservation, then the link resets connections; then all is
calm again. The checks judge the spans in Jaeger against what the harness recorded: the
header each order went out with, the answer its client got, and the traceparent header of
every call that inventory and the cache received. What the learner's services say about
themselves is judged, never believed.
"""

import itertools
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
    hold,
)
from harness.tracing import Span, Trace

LEARNER = ("gateway", "orders")  # the services whose spans the learner writes
DOWNSTREAM = ("cache", "inventory")  # harness-owned: they record the traceparent they get
SERVICES = (*LEARNER, *DOWNSTREAM)

CLIENTS = 4
PAUSE = 0.02  # seconds a client waits between two orders
SAMPLED = 0.75  # the share of orders whose traceparent says "sampled"
CALM = 0.4  # seconds before the faults, and after them
LATENCY_MS = 300  # orders -> inventory answers this late in the slow phase
SLOW = 1.0  # seconds of the slow phase at least: each client places 2 or 3 orders in it
SLOW_MAX = 6.0  # seconds at most: the phase lasts until SLOW_ORDERS sampled orders ran in it
UNAVAILABLE = 0.6  # seconds of inventory answering 503 to every reservation
RESET = 0.6  # seconds of connections reset on orders -> inventory
CLIENT_TIMEOUT = 10.0  # far beyond any answer: every order gets one
SKUS = ("sku-1", "sku-2", "sku-3", "sku-4")

# The span of the call to inventory must hold the injected latency: Toxiproxy holds every
# answer back 300 ms, so the call took at least that long, more than inventory itself took.
# 90 % of it leaves room for clocks that tick in microseconds (no scheduler can make a call
# shorter than its latency).
HOP_FLOOR_MS = LATENCY_MS * 0.9
MIN_SLOW = 2  # sampled orders that ran whole in the slow phase (4 clients run about 8)
# The phase does not end before this many sampled orders ran whole in it: a busy machine, or
# an unlucky draw of the flags (a quarter of the orders are not sampled), left only one once.
SLOW_ORDERS = 4

# Spans reach Jaeger 100 ms (the exporters' schedule) after their service ended them. The
# checks read the traces once every sampled order's spans have all come, or once no new span
# has come for QUIET seconds (a wrong fix may never send some).
SPAN_WAIT = 8.0  # seconds at most
QUIET = 1.0


# -- what the clients sent and got -----------------------------------------------------------
@dataclass
class Placed:
    """One order a client placed: the trace context it sent, and what came back."""

    op: Operation
    phase: str

    @property
    def order(self) -> str:
        return str(self.op.value["order"])

    @property
    def trace_id(self) -> str:
        return str(self.op.value["trace"])

    @property
    def parent_id(self) -> str:
        return str(self.op.value["span"])

    @property
    def sampled(self) -> bool:
        return bool(self.op.value["sampled"])

    @property
    def status(self) -> int | None:
        return self.op.result["status"] if isinstance(self.op.result, dict) else None

    def describe(self) -> str:
        how = "sampled" if self.sampled else "not sampled"
        trace = f"trace {self.trace_id[:8]}..."
        return f"order {self.order} ({trace}, {how}, answered {self.status} {self.phase})"


def place_orders(url: str, numbers: Iterator[int]) -> Callable[[Client], None]:
    """The workload: each client places orders one after another, each the root of a trace."""

    def workload(client: Client) -> None:
        order = f"o-{next(numbers)}"
        trace_id = f"{client.rng.getrandbits(128) | 1:032x}"
        span_id = f"{client.rng.getrandbits(64) | 1:016x}"
        sampled = client.rng.random() < SAMPLED
        traceparent = f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"
        body = {"order": order, "sku": client.rng.choice(SKUS), "qty": client.rng.randint(1, 3)}
        value = {"order": order, "trace": trace_id, "span": span_id, "sampled": sampled}
        with client.op("order", value) as op:
            response = client.http.post(url, json=body, headers={"traceparent": traceparent})
            if response.status_code == 201:
                op.ok({"status": response.status_code})
            else:
                op.fail(f"HTTP {response.status_code}", {"status": response.status_code})
        client.sleep(PAUSE)

    return workload


# -- what inventory and the cache received ---------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One request a harness-owned service received, and the trace context it carried."""

    service: str
    path: str
    order: str | None  # inventory's body names the order; the cache's request does not
    traceparent: str | None
    at: float  # when it came, wall-clock seconds

    @property
    def parts(self) -> tuple[str, str, str] | None:
        """(trace id, parent span id, flags) of a well-formed traceparent, else None."""
        fields = (self.traceparent or "").strip().lower().split("-")
        if len(fields) != 4 or len(fields[1]) != 32 or len(fields[2]) != 16:
            return None
        return fields[1], fields[2], fields[3]

    @property
    def trace_id(self) -> str | None:
        return self.parts[0] if self.parts else None

    @property
    def parent_id(self) -> str | None:
        return self.parts[1] if self.parts else None

    @property
    def sampled(self) -> bool | None:
        return (int(self.parts[2], 16) & 1 == 1) if self.parts else None

    def describe(self) -> str:
        carried = f"traceparent {self.traceparent}" if self.traceparent else "no traceparent"
        return f"{self.service} received {self.path} with {carried}"


def received(lab: LabEnvironment, service: str) -> list[Call]:
    calls = []
    for request in HttpControl(lab, service).received():
        if request.get("path") == "/health":
            continue  # the harness's readiness probes
        headers, body = request.get("headers"), request.get("body")
        lowered = (
            {str(k).lower(): v for k, v in headers.items()} if isinstance(headers, dict) else {}
        )
        order = body.get("order") if isinstance(body, dict) else None
        at = request.get("time")
        call = Call(
            service,
            str(request.get("path")),
            str(order) if order else None,
            lowered.get("traceparent"),
            float(at) if isinstance(at, int | float) else 0.0,
        )
        calls.append(call)
    return calls


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario:
    """What the clients sent and got, what inventory and the cache received, and the traces."""

    placed: list[Placed]
    calls: list[Call]
    traces: dict[str, Trace]  # every trace with a span of any service, by id
    faults: Faults
    slow_from: float
    slow_until: float
    unavailable: tuple[float, float]  # wall-clock seconds in which inventory answered 503

    def answered(self) -> list[Placed]:
        return [p for p in self.placed if p.status is not None]

    def calls_in(self, trace_id: str) -> list[Call]:
        return [c for c in self.calls if c.trace_id == trace_id]

    def reservations(self, placed: Placed) -> list[Call]:
        """The calls inventory received for the order (its body names the order)."""
        return [c for c in self.calls if c.service == "inventory" and c.order == placed.order]

    def trace_of(self, placed: Placed) -> Trace | None:
        """The order's trace: the one its client started or, when that one holds no span,
        the one its call to inventory carried. Checks 2 and 3 judge the spans of orders
        whatever happened at the gateway (check 1 judges that)."""
        found = self.traces.get(placed.trace_id)
        for call in self.reservations(placed):
            found = found or self.traces.get(call.trace_id or "")
        return found

    def slow(self, placed: Placed) -> bool:
        """Whether the order ran from start to end while inventory's answers were late."""
        end = placed.op.end
        return placed.op.start >= self.slow_from and end is not None and end <= self.slow_until


def sampled_whole(history: History, since: float) -> int:
    """The sampled orders that started since `since` and ended with 201."""
    ops = history.where(f="order", status="ok", started_after=since)
    return sum(1 for op in ops if op.value["sampled"])


def phase_of(op: Operation, events: list[FaultEvent]) -> str:
    end = op.end if op.end is not None else op.start
    during = [e.description for e in events if e.overlaps(op.start, end)]
    return f"during {' and '.join(during)}" if during else "while all was calm"


def arrived(placed: list[Placed], calls: list[Call]) -> Callable[[dict[str, Trace]], bool]:
    """Whether every sampled order's trace holds the spans it must: the gateway's and orders'
    server spans, and the span each call to inventory or the cache came from."""

    def complete(traces: dict[str, Trace]) -> bool:
        for p in placed:
            if not p.sampled or p.status is None:
                continue
            trace = traces.get(p.trace_id)
            if (
                trace is None
                or not trace.of("gateway", "server")
                or not trace.of("orders", "server")
            ):
                return False
            ids = trace.by_id()
            for call in calls:
                if call.trace_id == p.trace_id and call.parent_id not in ids:
                    return False
        return True

    return complete


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    faults = Faults(lab_module)
    began = time.time()
    workload = place_orders(f"{lab_module.url('gateway')}/orders", itertools.count(1))
    with Traffic(chaoslab_seed).start(workload, clients=CLIENTS, timeout=CLIENT_TIMEOUT) as run:
        time.sleep(CALM)
        with faults.latency("orders -> inventory", LATENCY_MS):
            slow_from = time.monotonic()
            # On until SLOW_ORDERS sampled orders ran whole in it: check 2 judges them.
            hold(
                slow_from,
                at_least=SLOW,
                until=lambda: sampled_whole(run.history, slow_from) >= SLOW_ORDERS,
                at_most=SLOW_MAX,
            )
            slow_until = time.monotonic()  # before the heal: an answer it frees comes early
        with faults.http("inventory", status=503, path="/reservations"):
            unavailable_from = time.time()
            time.sleep(UNAVAILABLE)
            unavailable = (unavailable_from, time.time())  # before the heal
        with faults.reset("orders -> inventory"):
            time.sleep(RESET)
        time.sleep(CALM)
        history: History = run.stop()
    events = list(faults.timeline.events)
    placed = [Placed(op, phase_of(op, events)) for op in history.where(f="order")]
    calls = [call for service in DOWNSTREAM for call in received(lab_module, service)]
    traces = lab_module.jaeger.settle(
        SERVICES,
        since=began - 1,
        complete=arrived(placed, calls),
        timeout=SPAN_WAIT,
        quiet=QUIET,
    )
    return Scenario(placed, calls, traces, faults, slow_from, slow_until, unavailable)


# -- helpers on one trace --------------------------------------------------------------------
def descends(trace: Trace, span: Span, ancestor: Span) -> bool:
    """Whether `ancestor` is on the way from `span` up to the root."""
    ids = trace.by_id()
    seen: set[str] = set()
    current: Span | None = span
    while current is not None and current.span_id not in seen:
        if current.parent_id == ancestor.span_id:
            return True
        seen.add(current.span_id)
        current = ids.get(current.parent_id or "")
    return False


def the_one(trace: Trace | None, service: str) -> tuple[Span | None, str | None]:
    """The service's one SERVER span in the trace, or why there is not exactly one."""
    spans = trace.of(service, "server") if trace is not None else []
    if len(spans) == 1:
        return spans[0], None
    if not spans:
        return None, f"{service} has no SERVER span in it"
    return None, f"{service} has {len(spans)} SERVER spans in it, for one request"


def caller_of(trace: Trace, call: Call) -> Span | None:
    return trace.by_id().get(call.parent_id or "")


def caller(scenario: Scenario, call: Call) -> Span | None:
    """The span a call came from, in the trace its traceparent named."""
    trace = scenario.traces.get(call.trace_id or "")
    return caller_of(trace, call) if trace is not None else None


# -- the checks ------------------------------------------------------------------------------
def test_1_every_request_is_one_trace(scenario: Scenario) -> None:
    answered = [p for p in scenario.answered() if p.sampled]
    errors: list[str] = []
    whole = 0
    for placed in answered:
        trace = scenario.traces.get(placed.trace_id)
        problems = []
        if trace is None:
            errors.append(
                f"{placed.describe()}: Jaeger has no span of the trace its client started: "
                "the gateway did not continue the traceparent it was sent"
            )
            continue
        gateway, why = the_one(trace, "gateway")
        if why:
            problems.append(why)
        elif gateway is not None and gateway.parent_id != placed.parent_id:
            problems.append(
                f"the gateway's SERVER span is a child of {gateway.parent_id}, not of the "
                f"client's span {placed.parent_id} from the traceparent"
            )
        orders, why = the_one(trace, "orders")
        if why:
            problems.append(why)
        elif orders is not None and gateway is not None:
            parent = trace.by_id().get(orders.parent_id or "")
            if parent is None or parent.service != "gateway" or parent.kind != "client":
                problems.append(
                    "orders' SERVER span is not the child of a CLIENT span of the gateway "
                    "(the span of the gateway's call to orders)"
                )
            elif not descends(trace, orders, gateway):
                problems.append("orders' SERVER span is not under the gateway's SERVER span")
        callers: dict[str, set[str]] = defaultdict(set)
        for call in scenario.calls_in(placed.trace_id):
            caller = caller_of(trace, call)
            if caller is None or caller.service != "orders" or caller.kind != "client":
                shown = caller.describe() if caller else "a span Jaeger never received"
                problems.append(
                    f"the call {call.service} received came from {shown}, not from a CLIENT "
                    "span of orders"
                )
            elif orders is not None and not descends(trace, caller, orders):
                problems.append(
                    f"the CLIENT span of orders' call to {call.service} is not under orders' "
                    "SERVER span"
                )
            else:
                callers[call.service].add(caller.span_id)
        if callers["cache"] & callers["inventory"]:
            problems.append(
                "one CLIENT span covers both the call to the cache and the call to inventory: "
                "it cannot tell which of them took the time"
            )
        if problems:
            errors.append(f"{placed.describe()}: " + "; ".join(problems))
        else:
            whole += 1
    # Every call inventory and the cache received belongs to a request a client made.
    started = {p.trace_id for p in scenario.placed}
    stray = [c for c in scenario.calls if c.trace_id not in started]
    if stray:
        errors.append(
            f"{len(stray)} of the {len(scenario.calls)} calls inventory and the cache received "
            f"carried no trace a client started, e.g. {stray[0].describe()}: orders did not "
            "pass the trace on"
        )
    fragments = sorted(set(scenario.traces) - started)
    if fragments:
        example = scenario.traces[fragments[0]]
        roots = ", ".join(s.describe() for s in example.spans if s.parent_id is None) or "none"
        errors.append(
            f"Jaeger holds {len(fragments)} traces that no client started (pieces of requests, "
            f"each a trace of its own), e.g. trace {fragments[0]} with root {roots}"
        )
    unanswered = [p for p in scenario.placed if p.status is None]
    errors += [f"order {p.order} got no answer: {p.op.error}" for p in unanswered]
    result = CheckResult(
        "every request is one trace",
        "for every sampled order, the trace its client started holds one SERVER span of the "
        "gateway (a child of the client's span), one of orders (a child of the gateway's CLIENT "
        "span), and each call inventory and the cache received came from its own CLIENT span "
        "of orders, under orders' SERVER span; and no trace that no client started",
        f"{whole} of {len(answered)} sampled orders were one whole trace; Jaeger holds "
        f"{len(scenario.traces)} traces in all",
        errors,
    )
    expect(result.judging(p.op for p in scenario.placed), during=scenario.faults.timeline)


def test_2_the_slow_hop_holds_the_time(scenario: Scenario) -> None:
    slow = [p for p in scenario.answered() if p.sampled and p.status == 201 and scenario.slow(p)]
    errors: list[str] = []
    shown = 0
    for placed in slow:
        trace = scenario.trace_of(placed)
        calls = scenario.reservations(placed)
        if trace is None or not calls:
            errors.append(
                f"{placed.describe()}: no span of its trace covers the call to inventory "
                "(see check 1)"
            )
            continue
        hop = caller(scenario, calls[-1])
        if hop is None or hop.service != "orders" or hop.kind != "client":
            errors.append(
                f"{placed.describe()}: no CLIENT span of orders covers the call to inventory, "
                "so the trace cannot show where the 300 ms went (see check 1)"
            )
            continue
        hop_trace = scenario.traces[hop.trace_id]
        inside = [s for s in hop_trace.children(hop) if s.service == "inventory"]
        own = hop.duration_ms - sum(s.duration_ms for s in inside)
        if own < HOP_FLOOR_MS:
            took = f", inventory itself {inside[0].duration_ms:.0f} ms" if inside else ""
            errors.append(
                f"{placed.describe()}: orders' span of the call to inventory lasted "
                f"{hop.duration_ms:.0f} ms{took}, while every answer of inventory came "
                f"{LATENCY_MS} ms late: does the span cover the whole call, from sending the "
                "request to reading the answer?"
            )
        else:
            shown += 1
    if len(slow) < MIN_SLOW:
        errors.append(
            f"only {len(slow)} sampled orders ran whole while inventory was slow; at least "
            f"{MIN_SLOW} are needed to judge the spans"
        )
    result = CheckResult(
        "the slow hop holds the time",
        f"while orders -> inventory held every answer {LATENCY_MS} ms, each order's CLIENT "
        f"span of orders' call to inventory lasted at least {HOP_FLOOR_MS:.0f} ms more than "
        "inventory's own span: the trace points at that hop",
        f"{shown} of {len(slow)} orders placed while inventory was slow showed it in the span "
        "of that call",
        errors,
    )
    expect(result.judging(p.op for p in slow), during=scenario.faults.timeline)


def test_3_failures_are_marked_as_errors(scenario: Scenario) -> None:
    answered = [p for p in scenario.answered() if p.sampled]
    failed = [p for p in answered if p.status is not None and p.status >= 500]
    errors: list[str] = []
    for placed in answered:
        trace = scenario.trace_of(placed)
        if trace is None:
            if placed.status != 201:
                errors.append(
                    f"{placed.describe()}: its trace holds no span (see check 1), so nothing "
                    "shows that it failed"
                )
            continue
        problems = []
        gateway, _ = the_one(trace, "gateway")
        orders, _ = the_one(trace, "orders")
        if placed.status == 201:
            wrong = [s for s in trace.spans if s.is_error]
            if wrong:
                problems.append(f"{wrong[0].describe()} is ERROR, yet the order was placed")
        else:
            if gateway is not None:
                code = gateway.tags.get("http.response.status_code")
                if not gateway.is_error:
                    problems.append("the gateway's SERVER span is not ERROR")
                if code is None or str(code) != str(placed.status):
                    problems.append(
                        f"the gateway's SERVER span has http.response.status_code {code!r}; "
                        f"its client got {placed.status}"
                    )
            if orders is not None and not orders.is_error:
                problems.append("orders' SERVER span is not ERROR")
            failing = [s for s in trace.of("orders", "client") if s.is_error]
            begin, end = scenario.unavailable
            unavailable = [c for c in scenario.reservations(placed) if begin <= c.at <= end]
            for call in unavailable:
                hop = caller(scenario, call)
                if hop is not None and hop.service == "orders" and hop.kind == "client":
                    code = hop.tags.get("http.response.status_code")
                    if not hop.is_error:
                        problems.append(
                            "orders' CLIENT span of the call inventory answered 503 is not ERROR"
                        )
                    elif code is None or str(code) != "503":
                        problems.append(
                            "orders' CLIENT span of the call inventory answered 503 has "
                            f"http.response.status_code {code!r}"
                        )
            if not failing and not unavailable:
                problems.append(
                    "no CLIENT span of orders is ERROR: the call that failed is not marked"
                )
        if problems:
            errors.append(f"{placed.describe()}: " + "; ".join(problems))
    if not failed:
        errors.append("no sampled order failed: the faults did not bite (report this)")
    result = CheckResult(
        "failures are marked as errors",
        "every sampled order that failed has status ERROR on the gateway's and orders' SERVER "
        "spans and on the CLIENT span of the call that failed (a 503 from inventory, or a reset "
        "connection), with http.response.status_code as answered; an order that was placed "
        "has no ERROR span",
        f"{len(failed)} sampled orders failed, {len(answered) - len(failed)} were placed",
        errors,
    )
    expect(result.judging(p.op for p in answered), during=scenario.faults.timeline)


def test_4_sampling_follows_the_caller(scenario: Scenario) -> None:
    placed = scenario.answered()
    unsampled = [p for p in placed if not p.sampled]
    errors: list[str] = []
    for p in unsampled:
        trace = scenario.traces.get(p.trace_id)
        if trace is not None:
            errors.append(
                f"{p.describe()}: Jaeger holds {len(trace.spans)} spans of it, e.g. "
                f"{trace.spans[0].describe()}"
            )
    by_order = {p.order: p for p in placed}
    for call in scenario.calls:
        if call.service != "inventory" or call.order not in by_order:
            continue
        p = by_order[call.order]
        if call.trace_id != p.trace_id:
            errors.append(f"{p.describe()}: {call.describe()}, not its client's trace")
        elif call.sampled != p.sampled:
            said = "sampled" if call.sampled else "not sampled"
            errors.append(f"{p.describe()}: {call.describe()}, which says {said}")
    sampled = sum(1 for p in placed if p.sampled)
    recorded = sum(len(t.of("gateway", "server")) for t in scenario.traces.values())
    if recorded > sampled:
        errors.append(
            f"the gateway recorded {recorded} SERVER spans for the {sampled} orders its "
            "clients sampled: it sampled requests its callers chose not to"
        )
    result = CheckResult(
        "sampling follows the caller",
        "no span at all of an order whose traceparent said not sampled (-00), and the "
        "decision passed on: inventory received each order's trace with its client's flag",
        f"{len(unsampled)} of {len(placed)} orders were not sampled; Jaeger holds "
        f"{len(scenario.traces)} traces",
        errors,
    )
    expect(result.judging(p.op for p in placed), during=scenario.faults.timeline)
