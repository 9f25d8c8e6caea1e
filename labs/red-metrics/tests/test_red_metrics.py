"""Checks for the red-metrics lab, against the run's real Prometheus.

One scenario runs once for the module. Six shoppers check out (three requests in four) and
look up orders they placed (the fourth), about 60 requests a second, through four phases:

  normal   0.5 s  nothing wrong
  slow     1.5 s  payments takes 400 ms more for a quarter of the charges
  drops    1.2 s  orders fails 40 % of new orders (HTTP 500), which checkout swallows
  errors   0.8 s  payments fails half of the charges (HTTP 503)

Then the traffic stops, 40 orders are looked up one after another, 10 more with the link to
orders down (checkout's handler raises: Starlette answers 500), and checks 1, 2, 3, 5 and 6
read Prometheus once it has scraped checkout after the last request: what checkout's metrics
say is compared with what the shoppers saw (their own history) and with what orders
really stored (its record), never with anything else checkout says about itself.

Check 4 judges the alerting rule in services/alerts.yml over hours of traffic that no check
can wait for: promtool, Prometheus's own rule tester, evaluates it (the real rule engine) over
seven made-up traffic histories with checkout's metric names and labels, and says at which
minutes the page was firing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import (
    CheckResult,
    Client,
    FaultEvent,
    Faults,
    History,
    LabEnvironment,
    Operation,
    Traffic,
    expect,
    percentile,
)
from harness.metrics import Prometheus, PrometheusError
from harness.metrics.rule_tests import Segment, firing_minutes
from harness.metrics.rule_tests import Traffic as RouteTraffic

SHOPPERS = 6
THINK = 0.08  # seconds a shopper pauses between requests
LOOKUPS = 0.25  # share of requests that look an order up
MAX_AMOUNT = 120.0  # euros of one order
USERS = 400  # distinct shoppers' ids: a label holding one grows without bound
TIMEOUT = 5.0  # seconds a shopper waits: every request gets an answer
LOOKED_UP = 40  # orders looked up one by one at the end (twice MAX_LABEL_VALUES)
LOOKED_UP_DOWN = 10  # then looked up with orders unreachable: checkout's handler raises

NORMAL = 0.5
SLOW = 1.5
SLOW_MS = 400  # added to a quarter of the charges: those checkouts take more than 300 ms
SLOW_SHARE = 0.25
DROPS = 1.2
DROP_SHARE = 0.4
ERRORS = 0.8
ERROR_SHARE = 0.5

SLO_SECONDS = 0.3
COUNT_SLACK = 0.01  # share of the requests by which counts may differ (at least 2 requests)
SHARE_SLACK = 0.03  # fast-enough shares may differ by 3 points (clocks differ by a few ms)
# A checkout's time in checkout is at most what its shopper waited, and on a busy machine the
# shopper may wait a while longer (its own process, the network): the histogram's share within
# 300 ms is at least the shoppers' share within 300 ms, and at most their share within 400 ms.
# The checkouts whose charge was 400 ms slower took more than 400 ms however they are timed.
WAIT_MARGIN = 0.1
MAX_LABEL_VALUES = 20  # distinct values one label may take
# Labels Prometheus or the histogram add, not checkout's own.
OWN_LABELS_EXCLUDED = {"__name__", "job", "instance", "service", "le", "quantile"}
CHECKOUT = '{job="checkout", route="/checkout"}'
# The lookups' series: under their template, or under each URL (check 6 judges which).
LOOKUPS_SERIES = '{job="checkout", route=~"/orders/.+"}'
ROUTES = ("/checkout", "/orders/{order_id}")
CODES = ("2xx", "4xx", "5xx")  # status classes (README)

ALERT = "CheckoutErrorBudgetBurn"
RULES = "services/alerts.yml"


@dataclass(frozen=True)
class Day:
    """One made-up traffic history for the alert, and when it must and must not page."""

    name: str
    story: str
    segments: tuple[Segment, ...]
    page_at: tuple[int, ...] = ()  # minutes at which the page must be firing
    quiet_from: int = 0  # from this minute on it must not be firing (except at page_at)
    quiet_until: int = 0


BASE = 0.0005  # 0.05 % of checkouts failing: half the budget's rate, a normal day
PER_MINUTE = 600  # checkouts a minute
LOOKUPS_PER_MINUTE = 1200  # order lookups a minute, never failing: customers look more than buy
DAYS = (
    Day("a normal day", "2 h at 0.05 % errors", (Segment(120, PER_MINUTE, BASE),), (), 2, 120),
    Day(
        "a noisy day",
        "2 h at 0.5 % errors (5 times the budget's rate: it lasts 6 days)",
        (Segment(120, PER_MINUTE, 0.005),),
        (),
        2,
        120,
    ),
    Day(
        "a day of declined cards",
        "2 h at 0.05 % errors, and 5 % of checkouts answered 4xx (cards declined, addresses "
        "mistyped: the shoppers' doing, not a failure of checkout)",
        (Segment(120, PER_MINUTE, BASE, refused=0.05),),
        (),
        2,
        120,
    ),
    Day(
        "a blip",
        "every checkout fails for 10 s at minute 60 (0.28 % of the hour's checkouts: a fifth "
        "of what pages)",
        (
            Segment(60, PER_MINUTE, BASE),
            Segment(1 / 6, PER_MINUTE, 1.0),
            Segment(60, PER_MINUTE, BASE),
        ),
        (),
        60,
        120,
    ),
    Day(
        "a short burst",
        "3 % errors for 10 minutes from minute 60 (0.5 % of the hour's checkouts: a third of "
        "what pages)",
        (
            Segment(60, PER_MINUTE, BASE),
            Segment(10, PER_MINUTE, 0.03),
            Segment(50, PER_MINUTE, BASE),
        ),
        (),
        60,
        120,
    ),
    Day(
        "a slow burn",
        "2 % errors from minute 30 on (20 times the budget's rate: gone in a day and a half)",
        (Segment(30, PER_MINUTE, BASE), Segment(120, PER_MINUTE, 0.02)),
        (110, 130, 150),
    ),
    Day(
        "an outage",
        "every checkout fails from minute 60 to 70, then all is well again",
        (
            Segment(60, PER_MINUTE, BASE),
            Segment(10, PER_MINUTE, 1.0),
            Segment(50, PER_MINUTE, BASE),
        ),
        (68, 70),
        80,
        120,
    ),
)


@dataclass
class Scenario:
    history: History
    faults: Faults
    env: LabEnvironment
    slow: FaultEvent
    began: float  # wall-clock seconds: traffic started
    read_at: float  # wall-clock seconds: Prometheus had scraped checkout after the last request
    to_wall: float  # add to a monotonic time to get wall-clock seconds
    placed: list[dict[str, Any]] = field(default_factory=list)  # what orders stored
    looked_up: list[int] = field(default_factory=list)  # statuses of the lookups one by one
    # (route, code) of the http_requests_total series checkout exposed before any request
    up_front: set[tuple[str, str]] = field(default_factory=set)

    def checkouts(self, start: float | None = None, end: float | None = None) -> list[Operation]:
        """The checkouts that got an answer, started and ended between start and end
        (monotonic seconds)."""
        return [
            op
            for op in self.history.where(f="checkout", status="ok")
            if (start is None or op.start >= start)
            and (end is None or (op.end is not None and op.end <= end))
        ]

    def value(self, expr: str) -> float | None:
        return self.env.prometheus.value(expr, at=self.read_at)


def shop(url: str, orders_seen: list[str], lock: threading.Lock) -> Callable[[Client], None]:
    def workload(client: Client) -> None:
        with lock:
            known = list(orders_seen)
        if known and client.rng.random() < LOOKUPS:
            order_id = client.rng.choice(known)
            with client.op("lookup", order_id) as op:
                answer = client.http.get(f"{url}/orders/{order_id}")
                op.ok({"status": answer.status_code})
        else:
            body = {
                "user": f"u-{client.rng.randrange(USERS)}",
                "amount": round(client.rng.uniform(5, MAX_AMOUNT), 2),
                "items": [f"sku-{client.rng.randrange(50)}"],
            }
            with client.op("checkout", body) as op:
                answer = client.http.post(f"{url}/checkout", json=body)
                op.ok({"status": answer.status_code})
            if answer.status_code == 200 and answer.json().get("order_id"):
                with lock:
                    orders_seen.append(answer.json()["order_id"])
        client.sleep(THINK)

    return workload


def exposed_requests(env: LabEnvironment) -> set[tuple[str, str]]:
    """(route, code) of every http_requests_total series on checkout's /metrics right now:
    read as Prometheus reads it, since its first scrape may come after the first errors."""
    text = httpx.get(f"{env.direct_url('checkout')}/metrics", timeout=TIMEOUT).text
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        return set()  # check 1 says what Prometheus made of it
    return {
        (sample.labels.get("route", ""), sample.labels.get("code", ""))
        for family in families
        for sample in family.samples
        if sample.name == "http_requests_total"
    }


def scraped_after(env: LabEnvironment, moment: float, limit: float = 10.0) -> float:
    """Wait until Prometheus has scraped checkout successfully after `moment` (wall-clock
    seconds); a time from which every query sees all the traffic."""
    try:
        env.prometheus.wait_scraped_after(moment, job="checkout", timeout=limit)
    except PrometheusError:
        pytest.fail(f"Prometheus did not scrape checkout within {limit:.0f} s of the last request")
    return time.time()


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    env = lab_module
    faults = Faults(env)
    orders_lock = threading.Lock()
    orders_seen: list[str] = []
    traffic = Traffic(chaoslab_seed)
    up_front = exposed_requests(env)
    to_wall = time.time() - time.monotonic()
    began = time.time()
    run = traffic.start(
        shop(env.url("checkout"), orders_seen, orders_lock),
        clients=SHOPPERS,
        duration=60.0,
        timeout=TIMEOUT,
    )
    try:
        time.sleep(NORMAL)
        with faults.http("payments", delay_ms=SLOW_MS, share=SLOW_SHARE, path="/charge") as slow:
            time.sleep(SLOW)
        with faults.http("orders", status=500, share=DROP_SHARE, path="/orders", method="POST"):
            time.sleep(DROPS)
        with faults.http("payments", status=503, share=ERROR_SHARE, path="/charge"):
            time.sleep(ERRORS)
    finally:
        history = run.stop()
    # Orders looked up one after another, each by its own URL: that many distinct paths
    # however slow the machine was (a label holding the path gets a series for each). Then
    # some with orders unreachable: checkout's lookup raises, and Starlette answers 500 for it.
    looked_up: list[int] = []
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as http:
        for order_id in orders_seen[-LOOKED_UP:]:
            looked_up.append(http.get(f"{env.url('checkout')}/orders/{order_id}").status_code)
    with faults.down("checkout -> orders"):
        for order_id in orders_seen[:LOOKED_UP_DOWN]:
            # A connection each: uvicorn closes one whose request raised, and a request sent
            # on it before its close arrives gets no answer at all.
            answer = httpx.get(
                f"{env.url('checkout')}/orders/{order_id}", timeout=TIMEOUT, trust_env=False
            )
            looked_up.append(answer.status_code)
    read_at = scraped_after(env, time.time())
    placed = httpx.get(f"{env.direct_url('orders')}/placed", timeout=10).json()["orders"]
    return Scenario(
        history, faults, env, slow, began, read_at, to_wall, placed, looked_up, up_front
    )


# -- the checks ---------------------------------------------------------------------------
def test_1_errors_are_counted_as_the_shoppers_saw_them(scenario: Scenario) -> None:
    ops = scenario.checkouts()
    seen_total = len(ops)
    seen_errors = sum(1 for op in ops if op.result["status"] >= 500)
    by_code = scenario.env.prometheus.query(
        f"sum by (code) (http_requests_total{CHECKOUT})", at=scenario.read_at
    )
    errors: list[str] = []
    if not by_code:
        errors.append('no series http_requests_total{route="/checkout"} in Prometheus')
    elif any("code" not in sample.labels for sample in by_code):
        errors.append(
            'http_requests_total{route="/checkout"} has no `code` label: a success and an error '
            "count the same, so no error ratio can be computed"
        )
    counted = {s.labels.get("code", ""): s.value for s in by_code}
    lookups = [
        op.result["status"] for op in scenario.history.where(f="lookup", status="ok")
    ] + scenario.looked_up
    lookup_errors = sum(1 for status in lookups if status >= 500)
    counted_lookups = {
        s.labels.get("code", ""): s.value
        for s in scenario.env.prometheus.query(
            f"sum by (code) (http_requests_total{LOOKUPS_SERIES})", at=scenario.read_at
        )
    }
    if not errors:
        errors += _compare_counts("checkouts", counted, seen_total, seen_errors)
        errors += _compare_counts(
            "order lookups",
            counted_lookups,
            len(lookups),
            lookup_errors,
            " (when orders is unreachable, checkout's handler raises and Starlette answers "
            "500: the last lookups were made so)",
        )
    missing = [
        f'{{route="{route}", code="{code}"}}'
        for route in ROUTES
        for code in CODES
        if (route, code) not in scenario.up_front
    ]
    if missing:
        errors.append(
            "before the first request, checkout's /metrics had no series http_requests_total"
            f"{', '.join(missing)}: a series born with its first request starts at 1, not 0, "
            "and rate() cannot tell that first sample from an old one, so it misses those "
            "requests (an outage's first errors among them)"
        )
    ratio = seen_errors / seen_total if seen_total else 0.0
    result = CheckResult(
        "errors are counted as the shoppers saw them",
        expected=(
            'http_requests_total{route="/checkout", code="5xx"} and the total agree with the '
            f"shoppers' answers within {COUNT_SLACK:.0%} (the error ratio {ratio:.1%}), so do "
            "the order lookups' (errors raised in the handler included), and "
            f"every route and code ({len(ROUTES) * len(CODES)} series) is at 0 before the "
            "first request"
        ),
        observed=f"counted by code: {_show(counted)}; shoppers: {seen_errors} errors of "
        f"{seen_total} checkouts; lookups counted by code: {_show(counted_lookups)}; "
        f"shoppers: {lookup_errors} errors of {len(lookups)} lookups; "
        f"{len(ROUTES) * len(CODES) - len(missing)} of the series there before the first "
        "request",
        errors=errors,
    )
    expect(result.judging(ops), during=scenario.faults.timeline)


def _compare_counts(
    what: str, counted: dict[str, float], seen_total: int, seen_errors: int, why: str = ""
) -> list[str]:
    """What checkout counted (by code) against the answers the shoppers got, within slack."""
    errors = []
    total = sum(counted.values())
    slack = max(2.0, COUNT_SLACK * seen_total)
    if abs(total - seen_total) > slack:
        errors.append(f"checkout counted {total:.0f} {what}; the shoppers got {seen_total} answers")
    if abs(counted.get("5xx", 0.0) - seen_errors) > slack:
        errors.append(
            f'checkout counted {counted.get("5xx", 0.0):.0f} {what} with code="5xx"; the '
            f"shoppers got {seen_errors} answers 5xx (counted by code: {_show(counted)}){why}"
        )
    return errors


def test_2_p99_from_the_histogram_matches_the_shoppers(scenario: Scenario) -> None:
    ops = scenario.checkouts()
    seen = percentile([op.latency or 0.0 for op in ops], 99)
    bounds = _bucket_bounds(scenario)
    errors: list[str] = []
    estimate: float | None = None
    if not bounds:
        errors.append(
            'http_request_duration_seconds{route="/checkout"} has no buckets (a summary?): '
            "no quantile can be computed from it, nor added up across instances"
        )
    else:
        estimate = scenario.value(
            "histogram_quantile(0.99, sum by (le) "
            f"(http_request_duration_seconds_bucket{CHECKOUT}))"
        )
        if estimate is None or math.isnan(estimate):
            errors.append("the histogram observed no checkouts")
        elif abs(_bucket_of(estimate, bounds) - _bucket_of(seen, bounds)) > 1:
            errors.append(
                f"p99 from the histogram {estimate * 1000:.0f} ms; the shoppers' p99 "
                f"{seen * 1000:.0f} ms is more than a bucket away (buckets: {_show_bounds(bounds)})"
            )
    shown = "none" if estimate is None or math.isnan(estimate) else f"{estimate * 1000:.0f} ms"
    result = CheckResult(
        "p99 from the histogram matches the shoppers'",
        expected="histogram_quantile(0.99, ...) of checkout's http_request_duration_seconds "
        "lands within one bucket of the shoppers' own p99 (a quarter of the charges were "
        f"{SLOW_MS} ms slower for {SLOW:.1f} s)",
        observed=f"shoppers' p99 {seen * 1000:.0f} ms; histogram's {shown}",
        errors=errors,
    )
    expect(result.judging(ops), during=[scenario.slow])


def test_3_the_slo_threshold_is_a_bucket(scenario: Scenario) -> None:
    ops = scenario.checkouts()
    seen_fast = sum(1 for op in ops if (op.latency or 0.0) <= SLO_SECONDS) / max(1, len(ops))
    seen_loose = sum(1 for op in ops if (op.latency or 0.0) <= SLO_SECONDS + WAIT_MARGIN) / max(
        1, len(ops)
    )
    bounds = _bucket_bounds(scenario)
    errors: list[str] = []
    fast: float | None = None
    if not bounds:
        errors.append(
            'http_request_duration_seconds{route="/checkout"} has no buckets (a summary?): '
            "it cannot count the checkouts faster than 300 ms"
        )
    elif SLO_SECONDS not in bounds:
        errors.append(
            f"no bucket ends at {SLO_SECONDS} s (buckets: {_show_bounds(bounds)}): the share of "
            "checkouts within the SLO can only be guessed by interpolating inside a bucket"
        )
    else:
        total = scenario.value(f"sum(http_request_duration_seconds_count{CHECKOUT})") or 0.0
        within = [
            s.value
            for s in scenario.env.prometheus.query(
                f"sum by (le) (http_request_duration_seconds_bucket{CHECKOUT})",
                at=scenario.read_at,
            )
            if float(s.labels["le"]) == SLO_SECONDS
        ]
        fast = within[0] / total if total and within else 0.0
        if not seen_fast - SHARE_SLACK <= fast <= seen_loose + SHARE_SLACK:
            errors.append(
                f"the histogram says {fast:.1%} of checkouts took at most 300 ms; the shoppers "
                f"saw {seen_fast:.1%} answered within 300 ms, and {seen_loose:.1%} within "
                f"{(SLO_SECONDS + WAIT_MARGIN) * 1000:.0f} ms"
            )
    result = CheckResult(
        "the SLO's threshold is a bucket",
        expected=f"a bucket ending at 0.3 s, whose share of checkouts is at least the shoppers'"
        f" share answered within 300 ms ({seen_fast:.1%}) and at most their share within"
        f" {(SLO_SECONDS + WAIT_MARGIN) * 1000:.0f} ms ({seen_loose:.1%}), give or take"
        f" {SHARE_SLACK * 100:.0f} points",
        observed="share within 300 ms per the histogram: "
        + (f"{fast:.1%}" if fast is not None else "none"),
        errors=errors,
    )
    expect(result.judging(ops), during=scenario.faults.timeline)


def test_4_the_page_comes_for_a_burning_budget_only(scenario: Scenario) -> None:
    env = scenario.env
    program = env.prometheus_program
    assert program is not None
    errors: list[str] = []
    judged: list[str] = []
    problem = env.rule_problems.get(RULES)
    if problem is not None:
        errors.append(f"promtool check rules {RULES} refuses it:\n      {problem}")
    elif (ALERT, "alerting") not in {
        (r.get("name"), r.get("type")) for r in env.prometheus.rules()
    }:
        errors.append(f"{RULES} has no alerting rule named {ALERT}")
    else:
        assert env.workdir is not None
        rules = env.workdir / RULES
        with ThreadPoolExecutor(len(DAYS)) as pool:  # one promtool each, side by side
            stories = list(pool.map(lambda day: _judge_alert(program, rules, day), DAYS))
        for day, story in zip(DAYS, stories, strict=True):
            judged.append(f"{day.name}: {story or 'as expected'}")
            if story:
                errors.append(f"{day.name} ({day.story}): {story}")
    result = CheckResult(
        "the page comes for a burning budget, and only then",
        expected=f"{ALERT} (SLO: 99.9 % of checkouts succeed) firing within 8 minutes of an "
        "outage, and within 80 minutes of a slow burn; silent on a normal day, a noisy day, a "
        "day of declined cards, a 10-second blip and a short burst, and 10 minutes after an "
        "outage ended (evaluated by promtool over 2-hour histories of checkout's metrics)",
        observed="; ".join(judged) or "not evaluated",
        errors=errors,
    )
    expect(result)


def _judge_alert(program: Prometheus, rules: Path, day: Day) -> str:
    """What is wrong with when the alert fired over `day` ('' if nothing)."""
    minutes = round(sum(s.minutes for s in day.segments))
    quiet = set(range(day.quiet_from, day.quiet_until + 1, 2)) if day.quiet_until else set()
    at = sorted(quiet | set(day.page_at))
    labels = {"job": "checkout", "instance": "checkout", "service": "checkout"}
    traffic = [
        RouteTraffic("http_requests_total", {**labels, "route": "/checkout"}, day.segments),
        RouteTraffic(
            "http_requests_total",
            {**labels, "route": "/orders/{order_id}"},
            (Segment(minutes, LOOKUPS_PER_MINUTE, 0.0),),
        ),
    ]
    fired = set(firing_minutes(program, rules, ALERT, traffic, at))
    missed = [m for m in day.page_at if m not in fired]
    woke = sorted(m for m in fired if m not in day.page_at)
    if missed:
        return f"no page at minute {', '.join(map(str, missed))}"
    if woke:
        return f"paged at minute {', '.join(map(str, woke[:6]))}{' ...' if len(woke) > 6 else ''}"
    return ""


def test_5_orders_placed_are_counted_from_what_was_placed(scenario: Scenario) -> None:
    placed = scenario.placed
    paid = [op for op in scenario.checkouts() if op.result["status"] == 200]
    assert len(paid) > len(placed), (
        f"orders stored {len(placed)} of {len(paid)} paid checkouts: the scenario dropped none"
    )
    count = scenario.value('sum(orders_placed_total{job="checkout"})')
    value = scenario.value('sum(orders_value_euros_total{job="checkout"})')
    stored_value = sum(float(o["amount"]) for o in placed)
    errors: list[str] = []
    if count is None:
        errors.append("no series orders_placed_total in Prometheus")
    elif abs(count - len(placed)) > 1:
        errors.append(
            f"orders_placed_total says {count:.0f}; orders stored {len(placed)} (checkout "
            f"answered {len(paid)} paid checkouts: {len(paid) - len(placed)} orders were dropped)"
        )
    if value is None:
        errors.append("no series orders_value_euros_total in Prometheus")
    elif abs(value - stored_value) > 0.01 * len(placed) + (
        0 if count == len(placed) else MAX_AMOUNT
    ):
        errors.append(
            f"orders_value_euros_total says {value:.2f}; the orders stored are worth "
            f"{stored_value:.2f}"
        )
    result = CheckResult(
        "orders placed are counted from what was placed",
        expected="orders_placed_total and orders_value_euros_total agree with what orders "
        "stored (at most one order apart), not with the checkouts answered 200",
        observed=f"orders stored {len(placed)} worth {stored_value:.2f}; counted "
        + (f"{count:.0f}" if count is not None else "none")
        + (f" worth {value:.2f}" if value is not None else ""),
        errors=errors,
    )
    expect(result.judging(paid), during=scenario.faults.timeline)


def test_6_every_label_has_few_values(scenario: Scenario) -> None:
    series = scenario.env.prometheus.series(
        '{job="checkout", __name__=~"http_.*|orders_.*"}', scenario.began, scenario.read_at
    )
    values: dict[str, set[str]] = {}
    for labels in series:
        for name, value in labels.items():
            if name not in OWN_LABELS_EXCLUDED:
                values.setdefault(name, set()).add(value)
    errors = [
        f"label `{name}` took {len(seen)} values (e.g. {', '.join(sorted(seen)[:3])}): one series "
        "per value, without bound"
        for name, seen in sorted(values.items())
        if len(seen) > MAX_LABEL_VALUES
    ]
    result = CheckResult(
        "every label has few values",
        expected=f"at most {MAX_LABEL_VALUES} values per label of checkout's metrics, with "
        f"{USERS} shoppers and every order looked up by its own URL",
        observed=f"{len(series)} series; values per label: "
        + (", ".join(f"{n} {len(v)}" for n, v in sorted(values.items())) or "no labels"),
        errors=errors,
    )
    expect(result)


# -- reading the histogram ----------------------------------------------------------------
def _bucket_bounds(scenario: Scenario) -> list[float]:
    """The upper bounds of checkout's histogram buckets for /checkout (+Inf excluded)."""
    samples = scenario.env.prometheus.query(
        f"sum by (le) (http_request_duration_seconds_bucket{CHECKOUT})", at=scenario.read_at
    )
    return sorted(
        float(s.labels["le"]) for s in samples if s.labels.get("le") not in (None, "+Inf")
    )


def _bucket_of(seconds: float, bounds: list[float]) -> int:
    """The index of the bucket `seconds` falls in (len(bounds) for +Inf)."""
    return next((i for i, bound in enumerate(bounds) if seconds <= bound), len(bounds))


def _show_bounds(bounds: list[float]) -> str:
    return ", ".join(f"{b:g}" for b in bounds) + ", +Inf"


def _show(counted: dict[str, float]) -> str:
    return ", ".join(f"{k or '(none)'} {v:.0f}" for k, v in sorted(counted.items())) or "none"
