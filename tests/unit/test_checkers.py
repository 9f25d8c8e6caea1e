"""harness.checkers: concrete errors, never a bare bool."""

from __future__ import annotations

import pytest

from harness.checkers import (
    CheckFailed,
    CheckResult,
    agree,
    at_most,
    exactly_once,
    expect,
    latency_below,
    no_lost_writes,
)
from harness.faults import FaultEvent, Timeline
from harness.history import Operation


# -- exactly_once ----------------------------------------------------------------------------
def test_exactly_once_valid_when_every_key_applied_once():
    result = exactly_once(["c-1", "c-2"], ["c-1", "c-2"], what="charge")

    assert result.valid
    assert result.errors == []
    assert result.name == "every charge applied exactly once"
    assert result.expected == "each of the 2 charges applied once"
    assert result.observed == "all 2 charges applied once"


def test_exactly_once_reports_a_duplicate():
    result = exactly_once(["c-1", "c-17", "c-17"], ["c-1", "c-17"], what="charge")

    assert not result.valid
    assert result.errors == ["charge c-17 applied 2 times; expected 1"]
    assert result.observed == "1 of 2 charges applied more than once"


def test_exactly_once_reports_a_missing_key():
    result = exactly_once(["c-1"], ["c-1", "c-2"], what="charge")

    assert result.errors == ["charge c-2 applied 0 times; expected 1 (it was acknowledged)"]
    assert result.observed == "1 problem(s) in 2 charges"


def test_exactly_once_reports_a_stray_key():
    result = exactly_once(["c-1", "c-9"], ["c-1"], what="charge")

    assert result.errors == ["charge c-9 applied 1 times; expected 0 (never requested)"]


def test_exactly_once_allow_missing_tolerates_absence_but_not_duplicates():
    assert exactly_once(["c-1"], ["c-1", "c-2"], what="charge", allow_missing=["c-2"]).valid

    result = exactly_once(
        ["c-1", "c-2", "c-2"], ["c-1", "c-2"], what="charge", allow_missing=["c-2"]
    )
    assert result.errors == ["charge c-2 applied 2 times; expected 1"]


def test_exactly_once_counts_a_key_expected_twice_once():
    result = exactly_once(["c-1"], ["c-1", "c-1"], what="charge")
    assert result.valid
    assert result.expected == "each of the 1 charges applied once"


def test_exactly_once_lists_errors_in_expected_order_then_strays():
    result = exactly_once(["x", "b", "b", "c"], ["a", "b", "c"])
    assert result.errors == [
        "operation a applied 0 times; expected 1 (it was acknowledged)",
        "operation b applied 2 times; expected 1",
        "operation x applied 1 times; expected 0 (never requested)",
    ]


def test_exactly_once_key_with_unknown_outcome_may_be_present():
    # acknowledged: c-1; unknown outcome (a timeout): c-2, which did go through once.
    result = exactly_once(["c-1", "c-2"], ["c-1"], what="charge", allow_missing=["c-2"])
    assert result.valid, result.errors


# -- no_lost_writes, agree, at_most ------------------------------------------------------------
def test_no_lost_writes_names_each_missing_write():
    result = no_lost_writes(["w1", "w2", "w3", "w2"], ["w1", "w3", "w9"], what="entry")

    assert result.errors == ["entry w2 was acknowledged but is missing"]
    assert result.observed == "1 of 3 acknowledged entrys missing"
    assert result.expected == "all 3 acknowledged entrys present"


def test_no_lost_writes_valid_when_all_present():
    result = no_lost_writes(["w1", "w2"], ["w2", "w1"])
    assert result.valid
    assert result.observed == "none lost"


def test_agree_reports_wrong_and_unknown_answers():
    result = agree(
        {"acct-1": 10, "acct-2": 20, "acct-3": 30},
        {"acct-1": 10, "acct-2": 25},
        what="balance",
        truth_name="the ledger",
    )

    assert result.errors == [
        "balance for acct-2 was 20; the ledger has 25",
        "balance for acct-3 was 30; the ledger has nothing for it",
    ]
    assert result.observed == "2 of 3 disagree"
    assert result.name == "every balance agrees with the ledger"


def test_agree_valid_when_all_match():
    result = agree({"k": "v"}, {"k": "v", "other": 1})
    assert result.valid
    assert result.observed == "all agree"


def test_at_most_within_the_bound():
    result = at_most(3, 3, what="calls while the breaker is open")
    assert result.valid
    assert result.observed == "3"


def test_at_most_over_the_bound_adds_the_detail():
    result = at_most(5, 3, what="calls while the breaker is open", detail=["call 4 at 1.2 s"])
    assert result.errors == [
        "calls while the breaker is open: 5; expected at most 3",
        "call 4 at 1.2 s",
    ]
    assert result.expected == "at most 3"


# -- latency_below -----------------------------------------------------------------------------
def _ops(*latencies, status="ok"):
    return [
        Operation(i, 0, "pay", f"p-{i}", 10.0, status, None if lat is None else 10.0 + lat)
        for i, lat in enumerate(latencies, 1)
    ]


def test_latency_below_valid_when_max_is_under_the_bound():
    result = latency_below(_ops(0.1, 0.2), 0.5, what="payment")
    assert result.valid
    assert result.expected == "max latency of payments under 500 ms"
    assert result.observed == "max 200 ms over 2 payments"


def test_latency_below_names_each_slow_operation_slowest_first():
    result = latency_below(_ops(0.1, 0.7, 0.9), 0.5, what="payment")

    assert result.errors == [
        "pay took 900 ms (ok); bound 500 ms",
        "pay took 700 ms (ok); bound 500 ms",
    ]
    assert result.observed == "max 900 ms over 3 payments, 2 over the bound"


def test_latency_below_judges_the_given_quantile():
    ops = _ops(0.1, 0.1, 0.1, 0.1, 2.0)

    p50 = latency_below(ops, 0.5, q=50)
    assert p50.valid
    assert p50.expected == "p50 latency of answers under 500 ms"
    assert p50.observed == "p50 100 ms over 5 answers, 1 over the bound"

    p99 = latency_below(ops, 0.5, q=99)
    assert not p99.valid
    assert p99.expected.startswith("p99 latency")


def test_latency_below_ignores_operations_still_open():
    result = latency_below(_ops(0.1, None), 0.5)
    assert result.valid
    assert result.observed == "max 100 ms over 1 answers"


def test_latency_below_with_no_completed_operation_is_an_error():
    result = latency_below(_ops(None), 0.5, what="read")
    assert result.errors == ["no read completed; expected at least one"]
    assert latency_below([], 0.5).errors == ["no answer completed; expected at least one"]


# -- expect ------------------------------------------------------------------------------------
def _failed():
    return exactly_once(["c-17", "c-17"], ["c-17"], what="charge")


def test_expect_passes_a_valid_result():
    expect(exactly_once(["c-1"], ["c-1"]))


def test_expect_raises_check_failed_that_tells_expected_observed_and_errors():
    with pytest.raises(CheckFailed) as caught:
        expect(_failed())

    text = str(caught.value)
    assert isinstance(caught.value, AssertionError)
    assert caught.value.result.errors == ["charge c-17 applied 2 times; expected 1"]
    assert text.splitlines() == [
        "every charge applied exactly once",
        "  expected: each of the 1 charges applied once",
        "  observed: 1 of 1 charges applied more than once",
        "    - charge c-17 applied 2 times; expected 1",
    ]


def test_expect_says_during_which_faults_from_a_timeline():
    timeline = Timeline()
    timeline.open("latency 200 ms on api -> store (downstream)", clock=lambda: 1.0)
    timeline.open("crash store", clock=lambda: 2.0)

    with pytest.raises(CheckFailed) as caught:
        expect(_failed(), during=timeline)

    assert str(caught.value).endswith(
        "  during: latency 200 ms on api -> store (downstream); crash store"
    )


def test_expect_accepts_fault_events():
    with pytest.raises(CheckFailed, match="during: pause store"):
        expect(_failed(), during=[FaultEvent("pause store", 0.0, 1.0)])


def test_explain_shows_at_most_eight_errors():
    result = CheckResult("n", "e", "o", [f"error {i}" for i in range(11)])
    lines = result.explain().splitlines()
    assert lines[-2] == "    - error 7"
    assert lines[-1] == "    ... and 3 more"


def test_expect_names_only_the_faults_that_overlapped_the_judged_operations():
    early = FaultEvent("latency 200 ms on api -> store (downstream)", 0.0, 1.0)
    during = FaultEvent("crash store", 5.0, 6.0)
    still_on = FaultEvent("partition api | store", 5.5)
    ops = [Operation(1, 0, "read", None, 4.8, "ok", 5.2), Operation(2, 0, "read", None, 5.3)]

    with pytest.raises(CheckFailed) as caught:
        expect(_failed().judging(ops), during=[early, during, still_on])

    assert str(caught.value).endswith("  during: crash store")


def test_latency_below_judges_its_operations_window():
    ops = [
        Operation(1, 0, "read", None, 2.0, "ok", 2.5),
        Operation(2, 0, "read", None, 3.0, "ok", 3.1),
    ]

    assert latency_below(ops, 1.0).window == (2.0, 3.1)
