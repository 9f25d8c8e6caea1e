"""`linearizable`: histories encoded for porcupine as the harness means them (unknown may have
happened, fail did not), a story a learner can follow, porcupine's picture annotated with the
faults, and "unknown" (never a pass) when the checker runs out of time."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Artifact, Lab, LabEnvironment, SetupError, Timeline
from harness.environment import logs_dir
from harness.history import History, Operation
from harness.linearizability import linearizable
from harness.tools import find_toxiproxy

pytestmark = pytest.mark.integration


class Script:
    """A history written by hand: each operation with its call and answer times (seconds)."""

    def __init__(self) -> None:
        self.history = History(clock=lambda: 0.0)

    def op(
        self,
        client: int,
        f: str,
        value: object,
        start: float,
        end: float | None,
        status: str = "ok",
        result: object = None,
    ) -> Operation:
        op = self.history.invoke(client, f, value)
        op.start = start
        self.history.complete(op, status, result)  # type: ignore[arg-type]
        op.end = end
        return op


def stale_read() -> Script:
    s = Script()
    s.op(0, "put", ("x", "a"), 0.0, 0.1)
    s.op(1, "put", ("x", "b"), 0.2, 0.3)
    s.op(2, "get", "x", 0.4, 0.5, result="a")  # b was written before this read began
    return s


def test_a_linearizable_history_passes() -> None:
    s = Script()
    s.op(0, "put", ("x", "a"), 0.0, 0.1)
    s.op(1, "get", "x", 0.05, 0.2, result="")  # concurrent with the put: either is fine
    s.op(1, "get", "x", 0.3, 0.4, result="a")
    s.op(2, "append", ("x", "b"), 0.5, 0.6)
    s.op(0, "get", "x", 0.7, 0.8, result="ab")
    s.op(0, "get", "y", 0.7, 0.8, result=None)  # absent reads as ""
    result = linearizable(s.history, model="kv")
    assert result.valid, result.explain()
    assert "5 operations" not in result.observed  # every one of the 6 is counted
    assert "6 operations on 2 key(s)" in result.observed


def test_a_stale_read_fails_with_the_operations_that_cannot_be_ordered(tmp_path: Path) -> None:
    timeline = Timeline()
    fault = timeline.open("partition: replica-1 | replica-2, replica-3", clock=lambda: 0.15)
    fault.end = 0.45
    picture = Artifact(tmp_path / "run" / "linearizability.html", tmp_path / "kept.html")
    result = linearizable(stale_read().history, timeline=timeline, visualization=picture)
    assert not result.valid
    story = result.explain()
    assert "not linearizable" in result.observed
    assert "key 'x'" in story
    assert "after it key 'x' holds \"b\", and none of the operations" in story
    assert "client 2: get('x') -> 'a'   (called 0.400 s, answered 0.500 s)" in story
    assert f"open in a browser): {tmp_path / 'kept.html'}" in story  # where the learner finds it
    assert result.during == ["partition: replica-1 | replica-2, replica-3"]
    html = picture.path.read_text()
    assert "partition: replica-1 | replica-2, replica-3" in html  # the fault, annotated
    assert 'get(\\"x\\") -\\u003e \\"a\\"' in html  # the read that cannot be ordered


def test_a_violation_fails_even_without_its_story() -> None:
    result = linearizable(stale_read().history, explain=0)  # no time to name the operations
    assert not result.valid
    assert "named no operations" in result.explain()


def test_an_unknown_write_may_have_happened_later() -> None:
    s = Script()
    s.op(0, "put", ("x", "a"), 0.0, None, status="unknown")  # timed out: did it happen?
    s.op(1, "get", "x", 0.5, 0.6, result="")
    s.op(1, "get", "x", 1.0, 1.1, result="a")  # it did, after the first read
    assert linearizable(s.history).valid


def test_an_unknown_write_cannot_take_effect_before_its_call() -> None:
    s = Script()
    s.op(1, "get", "x", 0.0, 0.1, result="a")
    s.op(0, "put", ("x", "a"), 0.5, None, status="unknown")
    assert not linearizable(s.history).valid


def test_the_story_says_why_an_operation_has_no_answer() -> None:
    s = Script()
    put = s.op(0, "put", ("x", "a"), 0.0, None, status="unknown")
    put.error = "no answer in time (ReadTimeout)"
    s.op(1, "get", "x", 0.5, 0.6, result="a")
    s.op(1, "get", "x", 1.0, 1.1, result="")  # the put happened: "" is gone for good
    story = linearizable(s.history).explain()
    assert (
        "put('x', 'a') -> unknown: no answer in time (ReadTimeout)   (called 0.000 s, no answer)"
        in story
    )


def test_a_failed_write_did_not_happen() -> None:
    s = Script()
    s.op(0, "put", ("x", "a"), 0.0, 0.1, status="fail")  # refused: 503 before doing anything
    s.op(1, "get", "x", 0.5, 0.6, result="a")
    assert not linearizable(s.history).valid


def test_reads_that_told_nothing_are_left_out() -> None:
    s = Script()
    s.op(0, "put", ("x", "a"), 0.0, 0.1)
    s.op(1, "get", "x", 0.2, None, status="unknown", result="garbage")
    s.op(1, "get", "x", 0.3, 0.4, status="fail", result="garbage")
    assert linearizable(s.history).valid


def test_register_and_cas_register() -> None:
    s = Script()
    s.op(0, "write", 1, 0.0, 0.1)
    s.op(1, "read", None, 0.2, 0.3, result=1)
    assert linearizable(s.history, model="register").valid
    s.op(2, "cas", (1, 2), 0.4, 0.5, result=True)
    s.op(0, "cas", (1, 3), 0.6, 0.7, result=True)  # the value was 2: this cannot have swapped
    result = linearizable(s.history, model="cas-register")
    assert not result.valid
    assert "client 0: cas(1, 3) -> swapped" in result.explain()
    never = Script()
    never.op(0, "read", None, 0.0, 0.1, result=None)  # never written: null
    assert linearizable(never.history, model="register").valid


def test_key_splits_a_history_into_independent_objects() -> None:
    s = Script()  # clients 0 and 1 use register "a", clients 2 and 3 register "b"
    s.op(0, "write", 1, 0.0, 0.1)
    s.op(2, "write", 2, 0.0, 0.1)
    s.op(1, "read", None, 0.2, 0.3, result=1)
    s.op(3, "read", None, 0.2, 0.3, result=2)
    assert not linearizable(s.history, model="register").valid  # as one register
    split = linearizable(s.history, model="register", key=lambda op: "ab"[op.client // 2])
    assert split.valid, split.explain()
    assert "on 2 key(s)" in split.observed


def test_out_of_time_is_unknown_never_a_pass() -> None:
    s = Script()
    for n in range(60):  # many overlapping writes and reads of one key: a hard history
        s.op(n % 12, "put", ("x", str(n)), n * 0.01, 5.0)
        s.op(n % 12, "get", "x", n * 0.01, 5.0, result=str((n * 7) % 60))
    result = linearizable(s.history, timeout=0.001)
    assert not result.valid
    assert result.observed.startswith(("unknown", "not linearizable"))
    if result.observed.startswith("unknown"):
        assert "not a pass" in result.explain()


def test_a_history_the_model_cannot_read_is_an_error() -> None:
    s = Script()
    s.op(0, "write", 1, 0.0, 0.1)
    with pytest.raises(ValueError, match="'write' is not an operation of the kv model"):
        linearizable(s.history, model="kv")
    bad = Script()
    bad.op(0, "put", "x", 0.0, 0.1)
    with pytest.raises(ValueError, match="must be a pair"):
        linearizable(bad.history)
    with pytest.raises(ValueError, match="unknown model"):
        linearizable(s.history, model="queue")  # type: ignore[arg-type]


def test_a_missing_checker_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSLAB_PORCUPINE", "/nonexistent/chaoslab-porcupine")
    with pytest.raises(SetupError, match="make setup"):
        linearizable(stale_read().history)


def test_an_artifact_is_kept_with_the_logs(
    ping_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSLAB_TOXIPROXY", str(find_toxiproxy()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with LabEnvironment(ping_lab) as env:
        picture = env.artifact("linearizability.html")
        picture.path.write_text("<html>the picture</html>")
        with pytest.raises(ValueError, match="a file name, not a path"):
            env.artifact("../elsewhere.html")
    assert picture.kept == logs_dir("ping") / "linearizability.html"
    assert picture.kept.read_text() == "<html>the picture</html>"
    assert not picture.path.exists()  # the run's folder is gone
