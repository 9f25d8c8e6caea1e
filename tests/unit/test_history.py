"""harness.history: operations, their statuses and times, filters, percentiles."""

from __future__ import annotations

import pytest

from harness.history import History, Operation, percentile


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def history(clock):
    return History(clock=clock)


def test_an_invoked_operation_is_open_until_it_completes(history, clock):
    clock.now = 1.0
    op = history.invoke(client=2, f="charge", value="c-1")

    assert (op.id, op.client, op.f, op.value) == (1, 2, "charge", "c-1")
    assert (op.status, op.start, op.end, op.latency) == ("invoke", 1.0, None, None)


@pytest.mark.parametrize("status", ["ok", "fail", "unknown"])
def test_complete_records_status_result_error_and_end(history, clock, status):
    op = history.invoke(0, "read", "k1")
    clock.now = 0.25

    history.complete(op, status, result=7, error="boom" if status != "ok" else None)

    assert op.status == status
    assert op.end == 0.25
    assert op.latency == 0.25
    assert op.result == 7


def test_ids_follow_invocation_order(history):
    ids = [history.invoke(0, "write", i).id for i in range(3)]
    assert ids == [1, 2, 3]
    assert len(history) == 3
    assert [op.value for op in history] == [0, 1, 2]


def test_describe_reads_like_a_sentence(history, clock):
    op = history.invoke(3, "charge", "c-17")
    clock.now = 0.120
    history.complete(op, "unknown", error="no answer in time (ReadTimeout)")

    assert op.describe() == (
        "charge 'c-17' by client 3 -> unknown after 120 ms: no answer in time (ReadTimeout)"
    )
    assert Operation(1, 0, "read", None, 0.0).describe() == "read None by client 0 -> invoke"


def test_where_filters_by_function_status_and_start(history, clock):
    for t, f, status in [(0.0, "write", "ok"), (1.0, "read", "ok"), (2.0, "write", "fail")]:
        clock.now = t
        history.complete(history.invoke(0, f), status)
    clock.now = 3.0
    history.invoke(0, "write")  # still open

    assert [op.id for op in history.where(f="write")] == [1, 3, 4]
    assert [op.id for op in history.where(status="ok")] == [1, 2]
    assert [op.id for op in history.where(f="write", status="fail")] == [3]
    assert [op.id for op in history.where(status="invoke")] == [4]
    assert [op.id for op in history.where(started_after=1.0)] == [2, 3, 4]
    assert [op.id for op in history.where(started_before=1.0)] == [1, 2]
    assert [op.id for op in history.where(started_after=0.5, started_before=2.5)] == [2, 3]
    assert len(history.where()) == 4


def test_counts_per_status(history):
    for status in ["ok", "ok", "fail", "unknown"]:
        history.complete(history.invoke(0, "w"), status)
    history.invoke(0, "w")

    assert history.counts() == {"ok": 2, "fail": 1, "unknown": 1, "invoke": 1}


def test_iterating_is_a_snapshot(history):
    history.invoke(0, "w")
    snapshot = iter(history)
    history.invoke(0, "w")
    assert len(list(snapshot)) == 1


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        ([10.0, 20.0], 90, 19.0),
        (list(range(1, 101)), 99, 99.01),
        ([7.0], 50, 7.0),
        ([7.0], 99, 7.0),
        ([1.0, 2.0], 150, 2.0),
        ([1.0, 2.0], -5, 1.0),
        ([], 99, 0.0),
    ],
    ids=[
        "median-even",
        "median-odd",
        "p0-is-min",
        "p100-is-max",
        "interpolates",
        "p99-of-100",
        "one-value-p50",
        "one-value-p99",
        "q-above-100-clamped",
        "q-below-0-clamped",
        "no-values",
    ],
)
def test_percentile(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_does_not_reorder_its_input():
    values = [3.0, 1.0, 2.0]
    percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]
