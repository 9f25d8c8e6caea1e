"""The checks of idempotency-keys: charges retried through timeouts and resets, and judged
against what the ledger wrote down.

Checks 1 and 2 judge one scenario, run once for the module: four clients charge orders through
payments while its answers (and the ledger's) first arrive after the clients' timeout, then are
cut off by a reset.
Each client retries a charge with the same key and body until it gets an answer. Checks 3 to 6
each try one thing: a reused key, duplicates at the same moment, a retry after a crash, and a
crash in the middle of a charge (at a crash point right after payments' first commit, and while
the ledger, having written the entry, holds its answer).
"""

import itertools
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness import (
    CheckResult,
    Client,
    Faults,
    History,
    LabEnvironment,
    Operation,
    Timeline,
    Traffic,
    agree,
    exactly_once,
    expect,
)

CLIENT_TIMEOUT = 0.5  # seconds the scenario's clients wait for an answer before retrying
SLOW_ANSWERS_MS = 1000  # latency on payments' answers: twice the clients' timeout
# Meanwhile the ledger's answers to payments are as slow, so a client's retry (after 0.55 to
# 0.65 s) reaches payments while its first attempt still waits for the ledger: a duplicate in
# flight, every run (a toxic let go at the end of the phase releases what it held).
SLOW_LEDGER_MS = 1000
# Every charge started in a phase loses at least one answer there: each phase is longer than
# a timeout plus a pause between attempts.
CALM = 0.2  # seconds before the faults and after them
SLOW_PHASE = 1.0  # seconds of slow answers
RESET_PHASE = 0.8  # seconds of answers cut off by a reset
CHARGE_DEADLINE = 6.0  # seconds a client keeps retrying one charge (the faults last ~2 s)
RETRY_STATUSES = {409, 500, 502, 503, 504}
SUCCESS = {200, 201}
REJECTED = {409, 422}
# Check 6: the ledger holds its answer this long after writing the entry, while the check
# (polling every 10 ms) sees the entry and kills payments; ample, and short enough that the
# held answer is over before the run ends.
LEDGER_HOLD_MS = 1000
ENTRY_WAIT = 2.0  # seconds the first attempt may take to reach the ledger


# -- the client's side of the protocol -------------------------------------------------------
@dataclass
class Answer:
    """What one POST /charges got back: a status and a JSON body, or no answer at all."""

    status: int | None
    body: Any = None
    error: str = ""

    @property
    def charged(self) -> bool:
        return self.status in SUCCESS

    def is_charge(self, entry: dict[str, Any]) -> bool:
        """Whether this answer tells of the ledger's `entry`."""
        return (
            self.charged
            and isinstance(self.body, dict)
            and self.body.get("charge_id") == entry["id"]
        )

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        if self.charged:
            return f"{self.status} {describe_charge(self.body)}"
        return f"{self.status} {self.body!r}"


def describe_charge(body: Any) -> str:
    """A charge as the checks print it, from an answer or a ledger entry: `charge 7 of 500`."""
    if not isinstance(body, dict):
        return f"not a charge: {body!r}"
    charge_id = body.get("charge_id", body.get("id"))
    return f"charge {charge_id} of {body.get('amount')}"


def new_key(seed: int, what: str) -> str:
    """A fresh idempotency key, the same for the same seed (so a run replays)."""
    return f"{random.Random(f'{seed}:{what}').getrandbits(128):032x}"


def post_charge(
    http: httpx.Client, base_url: str, key: str, body: dict[str, Any], timeout: float = 5.0
) -> Answer:
    """One attempt of POST /charges."""
    try:
        response = http.post(
            f"{base_url}/charges", json=body, headers={"Idempotency-Key": key}, timeout=timeout
        )
    except httpx.TransportError as exc:
        return Answer(None, error=type(exc).__name__)
    try:
        return Answer(response.status_code, response.json())
    except ValueError:
        return Answer(response.status_code, response.text[:200])


def ledger_entries(lab: LabEnvironment, order: str | None = None) -> list[dict[str, Any]]:
    """What the ledger wrote down (for one order), read without any proxy in the way."""
    entries = httpx.get(f"{lab.direct_url('ledger')}/entries", timeout=5.0).json()
    return [e for e in entries if order is None or e["order"] == order]


def wait_for_entry(lab: LabEnvironment, order: str, timeout: float) -> bool:
    """Whether the ledger wrote an entry for `order` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger_entries(lab, order):
            return True
        time.sleep(0.01)
    return False


def listed(entries: list[dict[str, Any]]) -> str:
    """Ledger entries in words: `charge 7 of 500`, or `3 charges of 500: 7, 9, 12`."""
    if len(entries) <= 1:
        return describe_charge(entries[0]) if entries else "nothing"
    if len({e["amount"] for e in entries}) == 1:
        ids = ", ".join(str(e["id"]) for e in entries)
        return f"{len(entries)} charges of {entries[0]['amount']}: {ids}"
    return f"{len(entries)} charges: " + ", ".join(describe_charge(e) for e in entries)


# -- the scenario of checks 1 and 2 ----------------------------------------------------------
@dataclass
class Retried:
    """What the retrying clients saw, what the ledger wrote down, and the faults meanwhile."""

    history: History
    entries: list[dict[str, Any]]
    timeline: Timeline

    def orders(self) -> list[str]:
        return list(dict.fromkeys(op.value["order"] for op in self.history.where(f="charge")))

    def answered(self) -> set[str]:
        return {op.value["order"] for op in self.history.where(f="charge", status="ok")}


def charge_until_answered(client: Client, url: str, orders: Iterator[int]) -> None:
    """One charge, as a careful client makes it: same key and body on every attempt, retried
    after a timeout, a reset or a 5xx until payments answers (or the deadline passes)."""
    body = {"order": f"c-{next(orders)}", "amount": client.rng.randrange(100, 10_000, 5)}
    key = f"{client.rng.getrandbits(128):032x}"
    deadline = time.monotonic() + CHARGE_DEADLINE
    while time.monotonic() < deadline:
        with client.op("charge", {**body, "key": key}) as attempt:
            response = client.http.post(url, json=body, headers={"Idempotency-Key": key})
            try:
                answer = response.json()
            except ValueError:
                answer = response.text[:200]
            if response.status_code in SUCCESS:
                attempt.ok(answer)
                return
            attempt.fail(f"HTTP {response.status_code}: {answer!r}", answer)
            if response.status_code not in RETRY_STATUSES:
                return
        time.sleep(client.rng.uniform(0.05, 0.15))


@pytest.fixture(scope="module")
def retried(lab_module: LabEnvironment, chaoslab_seed: int) -> Retried:
    faults = Faults(lab_module)
    url = f"{lab_module.url('payments')}/charges"
    orders = itertools.count(1)
    with Traffic(chaoslab_seed).start(
        lambda client: charge_until_answered(client, url, orders),
        clients=4,
        timeout=CLIENT_TIMEOUT,
    ) as run:
        time.sleep(CALM)
        with (
            faults.latency("checks -> payments", SLOW_ANSWERS_MS),
            faults.latency("payments -> ledger", SLOW_LEDGER_MS),
        ):
            time.sleep(SLOW_PHASE)
        with faults.reset("checks -> payments"):
            time.sleep(RESET_PHASE)
        time.sleep(CALM)
        history = run.stop()
    return Retried(history, ledger_entries(lab_module), faults.timeline)


def final_answers(history: History) -> dict[str, str]:
    """What each charge's client was finally told, in words."""
    attempts: dict[str, list[Operation]] = {}
    for op in history.where(f="charge"):
        attempts.setdefault(op.value["order"], []).append(op)
    answers = {}
    for order, ops in attempts.items():
        last = ops[-1]
        if last.status == "ok":
            answers[order] = describe_charge(last.result)
        else:
            answers[order] = f"no charge after {len(ops)} attempts (last: {last.error})"
    return answers


# -- the checks ------------------------------------------------------------------------------
def test_1_every_charge_applied_once(retried: Retried) -> None:
    orders = retried.orders()
    applied = [e["order"] for e in retried.entries if e["order"] in set(orders)]
    never_answered = set(orders) - retried.answered()  # check 2 reports these
    result = exactly_once(applied, orders, what="charge", allow_missing=never_answered)
    expect(result, during=retried.timeline)


def test_2_every_answer_agrees_with_the_ledger(retried: Retried) -> None:
    charges: dict[str, list[dict[str, Any]]] = {}
    for entry in retried.entries:
        charges.setdefault(entry["order"], []).append(entry)
    ledger = {order: listed(entries) for order, entries in charges.items()}
    result = agree(final_answers(retried.history), ledger, truth_name="the ledger")
    expect(result, during=retried.timeline)


def test_3_a_reused_key_with_a_different_body_is_rejected(
    lab: LabEnvironment, chaoslab_seed: int
) -> None:
    key = new_key(chaoslab_seed, "reused")
    first_body = {"order": "c-reuse-1", "amount": 500}
    # Each reuse differs in one field: a fingerprint must cover the whole body, not the order.
    reuses = [{"order": "c-reuse-1", "amount": 12_000}, {"order": "c-reuse-2", "amount": 500}]
    with httpx.Client(trust_env=False) as http:
        first = post_charge(http, lab.url("payments"), key, first_body)
        answers = [post_charge(http, lab.url("payments"), key, body) for body in reuses]
    charged = {order: ledger_entries(lab, order) for order in ("c-reuse-1", "c-reuse-2")}

    errors = []
    if not first.charged:
        errors.append(
            f"the first request ({first_body}) was answered {first.describe()}; expected 201"
        )
    for body, answer in zip(reuses, answers, strict=True):
        if answer.status not in REJECTED:
            errors.append(
                f"the same key with {body} was answered {answer.describe()}; expected 422"
            )
    if len(charged["c-reuse-1"]) > 1 or any(e["amount"] != 500 for e in charged["c-reuse-1"]):
        errors.append(
            f"the ledger has {listed(charged['c-reuse-1'])} for order c-reuse-1; expected "
            "one charge of 500"
        )
    if charged["c-reuse-2"]:
        errors.append(f"order c-reuse-2 was charged anyway: {listed(charged['c-reuse-2'])}")
    expect(
        CheckResult(
            "a reused key with a different body is rejected",
            "the same key with another amount, then with another order, answered 422 (or "
            "409) each time, and nothing charged for either",
            "answered "
            + "; ".join(answer.describe() for answer in answers)
            + f"; the ledger has {listed(charged['c-reuse-1'])} for c-reuse-1 and "
            f"{listed(charged['c-reuse-2'])} for c-reuse-2",
            errors,
        )
    )


def test_4_concurrent_duplicates_charge_once(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    copies = 4
    key = new_key(chaoslab_seed, "race")
    body = {"order": "c-race", "amount": 2500}
    start_together = threading.Barrier(copies)

    def send(http: httpx.Client) -> Answer:
        start_together.wait()
        return post_charge(http, lab.url("payments"), key, body)

    # The ledger answers slowly, so every copy arrives while the first is still in flight.
    with (
        faults.latency("payments -> ledger", 300),
        httpx.Client(trust_env=False) as http,
        ThreadPoolExecutor(copies) as pool,
    ):
        answers = list(pool.map(send, [http] * copies))
    charged = ledger_entries(lab, "c-race")

    errors = []
    if len(charged) != 1:
        errors.append(f"order c-race charged {len(charged)} times; expected 1")
    else:
        for number, answer in enumerate(answers, 1):
            if answer.status != 409 and not answer.is_charge(charged[0]):
                errors.append(
                    f"copy {number} was answered {answer.describe()}; expected "
                    f"{describe_charge(charged[0])}, or 409"
                )
    if not any(answer.charged for answer in answers):
        errors.append("no copy was answered with the charge; expected at least one 201")
    expect(
        CheckResult(
            "concurrent duplicates charge once",
            f"{copies} copies sent at once: one charge, each copy answered with it or 409",
            f"the ledger has {listed(charged)}; the copies got "
            + "; ".join(answer.describe() for answer in answers),
            errors,
        ),
        during=faults.timeline,
    )


def test_5_a_retry_after_a_crash_charges_nothing_new(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    key = new_key(chaoslab_seed, "crash")
    body = {"order": "c-crash", "amount": 7000}
    with httpx.Client(trust_env=False) as http:
        with faults.reset("checks -> payments"):
            lost = post_charge(http, lab.url("payments"), key, body)
        faults.kill("payments")
        faults.restart("payments")
        retry = post_charge(http, lab.url("payments"), key, body)
    charged = ledger_entries(lab, "c-crash")

    errors = []
    if len(charged) != 1:
        errors.append(f"order c-crash charged {len(charged)} times; expected 1")
    if not retry.charged or (len(charged) == 1 and not retry.is_charge(charged[0])):
        errors.append(
            f"the retry was answered {retry.describe()}; expected the charge the "
            f"ledger has ({listed(charged)})"
        )
    expect(
        CheckResult(
            "a retry after a crash charges nothing new",
            "the retry answered with the first attempt's charge, and one charge in the ledger",
            f"first attempt: {lost.describe()}; payments crashed and restarted; retry: "
            f"{retry.describe()}; the ledger has {listed(charged)}",
            errors,
        ),
        during=faults.timeline,
    )


@dataclass
class Interrupted:
    """One charge whose payments crashed part-way, and its retry after the restart."""

    order: str
    crash: str  # where payments crashed, in words
    first: Answer
    retry: Answer
    charged: list[dict[str, Any]]

    def errors(self) -> list[str]:
        errors = []
        if len(self.charged) > 1:
            errors.append(f"order {self.order} charged {len(self.charged)} times; expected 1")
        elif self.charged and self.retry.is_charge(self.charged[0]):
            pass
        elif self.retry.status != 409:
            expected = f"{describe_charge(self.charged[0])}, or 409" if self.charged else "409"
            errors.append(
                f"after a crash {self.crash}, the retry for {self.order} was answered "
                f"{self.retry.describe()}; the ledger has {listed(self.charged)}; expected "
                f"{expected}"
            )
        return errors

    def describe(self) -> str:
        return (
            f"{self.order}: crash {self.crash}; first attempt {self.first.describe()}; retry "
            f"{self.retry.describe()}; the ledger has {listed(self.charged)}"
        )


def test_6_a_crash_in_the_middle_of_a_charge_charges_at_most_once(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    url = lab.url("payments")
    acts = []
    with httpx.Client(trust_env=False) as http:
        # Act 1: payments dies right after its first database commit for the charge (the
        # claim, in a fix that claims before it calls the ledger).
        key = new_key(chaoslab_seed, "claimed")
        body = {"order": "c-claimed", "amount": 1700}
        with faults.crash_after_commit("payments", nth=1) as point:
            first = post_charge(http, url, key, body)
            crashed = point.fired and point.wait(timeout=5.0)
        crash = (
            "right after its first database commit"
            if crashed
            else "never happened (payments made no database commit while charging)"
        )
        retry = post_charge(http, url, key, body)
        acts.append(Interrupted("c-claimed", crash, first, retry, ledger_entries(lab, "c-claimed")))

        # Act 2: the ledger writes the entry, then holds its answer; payments dies waiting.
        key = new_key(chaoslab_seed, "in-flight")
        body = {"order": "c-in-flight", "amount": 3300}
        with (
            ThreadPoolExecutor(1) as pool,
            faults.http(
                "ledger", path="/entries", method="POST", response_delay_ms=LEDGER_HOLD_MS, first=1
            ),
        ):
            attempt = pool.submit(post_charge, http, url, key, body)
            written = wait_for_entry(lab, "c-in-flight", timeout=ENTRY_WAIT)
            if written:
                faults.kill("payments")
                faults.restart("payments")
            first = attempt.result()
        crash = (
            "while the ledger held its answer"
            if written
            else f"never happened (the ledger got no entry within {ENTRY_WAIT:g} s)"
        )
        retry = post_charge(http, url, key, body)
        acts.append(
            Interrupted("c-in-flight", crash, first, retry, ledger_entries(lab, "c-in-flight"))
        )

    errors = [error for act in acts for error in act.errors()]
    if not written:
        errors.append(f"the first attempt for c-in-flight was answered {first.describe()}; {crash}")
    expect(
        CheckResult(
            "a crash in the middle of a charge charges at most once",
            "after each crash, at most one charge in the ledger, and the retry answered with "
            "that charge, or 409",
            "; ".join(act.describe() for act in acts),
            errors,
        ),
        during=faults.timeline,
    )
