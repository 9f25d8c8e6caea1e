"""The checks of read-your-writes: client sessions write and read through the api while the
replica's link to the primary is slowed, and the history is judged against the primary's log.

Checks 1 to 3 judge one scenario, run once for the module, in two phases. Low lag: the
replication link delays the log by 100 ms while a writer updates a hot key and four sessions
each write a note and then read mostly. Lagging: after a bulk import brings the log to position
999, the link delays the log by 1,000 ms while the writer goes on, three sessions write and at
once read their notes, and two sessions read a key another session updated after their own
write, first before and then after the replica has applied their write. Check 4 stalls the
replication link (10 s of latency) and asks for a session's write back; check 5 does the same
across a restart of the api.

Every value written is unique, so the primary's log (harness-owned) tells which write, at which
log position, a read returned. What the api says about itself (its tokens) is never evidence.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness import (
    CheckResult,
    Faults,
    History,
    LabEnvironment,
    Operation,
    Timeline,
    expect,
)

LINK = "replica -> primary"  # the replication stream: the primary's log, write by write
CLIENT_TIMEOUT = 3.0  # seconds a session waits for an answer

# Phase 1, low lag: the replica is LOW_LAG_MS behind; the writer writes the hot key every
# WRITER_EVERY s, so the newest write of all is always ahead of the replica, while a reader's
# own note is applied there 0.1 s after it wrote it and it reads READS_PER_WRITE times between
# two notes.
LOW_LAG_MS = 100
LOW_PHASE = 0.9  # seconds the readers run
WRITER_EVERY = 0.03
READ_EVERY = 0.03
READS_PER_WRITE = 12
# A session-aware api sends the few reads right after a note to the primary (about 3 in 12);
# one that waits for the replica sends none. An api that sends every read, or every read after
# anybody's write, to the primary sends nearly all.
MAX_PRIMARY_SHARE = 0.5
CLOCK_SLACK = 0.05  # seconds: wall-clock times of the stores' records moved onto ours

# Phase 1 starts at position IMPORT_FIRST: its positions all have 3 digits.
IMPORT_FIRST = 100
# Phase 2, lagging: the log is brought to the position just before the next power of ten (999
# in a fresh lab) and applied on the replica before the lag starts, so every write in this
# phase has one digit more than the replica's position, until the replica applies the first.
ROOM = 100  # positions left for the writes before the power of ten, at least
LAG_MS = 1000
RYW_PHASE = 0.6  # seconds the write-then-read sessions run
# Monotonic reads: a session writes its note; GAP s later another session updates a key the
# first then reads (from the primary: the replica has not applied the note yet). Once the
# replica has applied the note, but not the update (for GAP s), the session reads the key
# again.
GAP = 0.5
CATCH_UP = 5.0  # seconds the checks wait for the replica to apply what they wait for

# Checks 4 and 5: the replication link stalls (a latency far beyond any read); a session's
# read may wait for the replica, then must get its write from somewhere, within READ_BOUND.
STALL_MS = 10_000
STALL_IMPORT_TO = 2000  # positions of 4 digits on both stores, whatever ran before
READ_BOUND = 1.5
STALLED_READS = 2


# -- sessions: the checks' clients, each recording what it did in one history -----------------
class Sessions:
    """Client sessions of the api recording into one history; a session's number is its
    client id in the history."""

    def __init__(self, base_url: str, history: History, seed: int = 0) -> None:
        self.base_url = base_url
        self.seed = seed
        self.history = history
        self.names: list[str] = []
        self.sessions: list[Session] = []

    def new(self, name: str) -> Session:
        self.names.append(name)
        self.sessions.append(Session(name, len(self.names) - 1, self))
        return self.sessions[-1]

    def __enter__(self) -> Sessions:
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self.sessions:
            session.http.close()


class Session:
    """One client session: it sends back the last Session-Token it was given, like a cookie.
    Its requests are sequential, one after the other."""

    def __init__(self, name: str, number: int, sessions: Sessions) -> None:
        self.name = name
        self.number = number
        self.sessions = sessions
        self.token: str | None = None
        self.writes = 0
        self.http = httpx.Client(trust_env=False, timeout=CLIENT_TIMEOUT)
        self.rng = random.Random(f"{sessions.seed}:{name}")

    def write(self, key: str) -> Operation:
        self.writes += 1
        value = f"{self.name}-{self.writes}"
        return self._call("PUT", key, value)

    def read(self, key: str) -> Operation:
        return self._call("GET", key)

    def _call(self, method: str, key: str, value: str | None = None) -> Operation:
        f = "write" if method == "PUT" else "read"
        history = self.sessions.history
        op = history.invoke(self.number, f, {"session": self.name, "key": key, "value": value})
        headers = {"Session-Token": self.token} if self.token is not None else {}
        try:
            response = self.http.request(
                method,
                f"{self.sessions.base_url}/kv/{key}",
                json={"value": value} if method == "PUT" else None,
                headers=headers,
            )
        except httpx.TransportError as exc:
            return history.complete(op, "unknown", error=f"no answer ({type(exc).__name__})")
        self.token = response.headers.get("Session-Token", self.token)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            return history.complete(
                op, "fail", error=f"HTTP {response.status_code} {response.text[:80]!r}"
            )
        got = body.get("value")
        if f == "read" and got is not None and not isinstance(got, str):
            return history.complete(op, "fail", error=f"not a value: {body!r}")
        return history.complete(op, "ok", result=got)


# -- what the stores recorded (read directly, never through a proxy) --------------------------
class Stores:
    """The primary and the replica as the checks see them: their positions and records."""

    def __init__(self, lab: LabEnvironment) -> None:
        self.lab = lab
        self.http = httpx.Client(trust_env=False, timeout=5.0)

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, service: str, path: str) -> Any:
        return self.http.get(f"{self.lab.direct_url(service)}{path}").json()

    def position(self, service: str) -> int:
        return int(self.get(service, "/position")["position"])

    def import_to(self, target: int) -> None:
        """A bulk import on the primary: filler writes until its log reaches `target`."""
        url = f"{self.lab.direct_url('primary')}/admin/import"
        self.http.post(url, json={"to": target}).raise_for_status()

    def wait_for_replica(self, target: int, timeout: float = CATCH_UP) -> None:
        """Block until the replica has applied the log up to `target`."""
        deadline = time.monotonic() + timeout
        while (applied := self.position("replica")) < target:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the replica did not reach log position {target} within {timeout:g} s "
                    f"(it is at {applied}): the lab's replication is broken"
                )
            time.sleep(0.005)

    def caught_up(self) -> int:
        """Wait until the replica has applied everything the primary has; the position."""
        target = self.position("primary")
        self.wait_for_replica(target)
        return target

    def versions(self) -> dict[str, int]:
        """Every value ever written, and the log position of its write (values are unique)."""
        return {str(e["value"]): int(e["position"]) for e in self.get("primary", "/record")["log"]}

    def reads(self, service: str) -> list[float]:
        """When each read the store answered arrived, on the checks' monotonic clock."""
        offset = time.time() - time.monotonic()
        return [float(r["time"]) - offset for r in self.get(service, "/record")["reads"]]


# -- the scenario of checks 1 to 3 -------------------------------------------------------------
@dataclass
class Scenario:
    """The sessions' history, where each value was written, and what the stores answered."""

    history: History
    names: list[str]
    versions: dict[str, int]
    timeline: Timeline
    low_lag: tuple[float, float]
    low_sessions: set[str]
    primary_reads: list[float] = field(default_factory=list)
    replica_reads: list[float] = field(default_factory=list)

    def ops(self) -> Iterator[tuple[str, list[Operation]]]:
        """Each session's operations, in the order it made them."""
        by_session: dict[str, list[Operation]] = {}
        for op in self.history:
            by_session.setdefault(self.names[op.client], []).append(op)
        yield from by_session.items()

    def version(self, value: str | None) -> int | None:
        """The log position of the write of `value`: 0 for no value, None if nobody wrote it."""
        return 0 if value is None else self.versions.get(value)

    def at(self, op: Operation) -> str:
        """When op ran and which faults were active, in words."""
        during = self.timeline.during(op.start, op.end if op.end is not None else op.start)
        faults = "; ".join(str(e) for e in during) if during else "no fault"
        return f"at {op.start - self.timeline.events[0].start:.2f} s ({faults})"


def described(value: str | None, version: int | None) -> str:
    if value is None:
        return "nothing (null)"
    return f"{value!r} (log position {version})"


def run_together(*scripts: Callable[[], None]) -> None:
    with ThreadPoolExecutor(len(scripts)) as pool:
        for future in [pool.submit(script) for script in scripts]:
            future.result()


@contextmanager
def writing(session: Session, key: str) -> Iterator[None]:
    """`session` writes `key` every WRITER_EVERY s for the duration of the block."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            session.write(key)
            stop.wait(WRITER_EVERY)

    thread = threading.Thread(target=loop, name=f"writer-{session.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(CLIENT_TIMEOUT + 5.0)


def low_lag_reader(session: Session) -> Callable[[], None]:
    def script() -> None:
        deadline = time.monotonic() + LOW_PHASE
        note = f"note:{session.name}"
        while time.monotonic() < deadline:
            session.write(note)
            for i in range(READS_PER_WRITE):
                session.read(note if i % 2 == 0 else f"item:{session.rng.randint(1, IMPORT_FIRST)}")
                time.sleep(READ_EVERY)
                if time.monotonic() >= deadline:
                    break

    return script


def write_then_read(session: Session) -> Callable[[], None]:
    def script() -> None:
        deadline = time.monotonic() + RYW_PHASE
        note = f"note:{session.name}"
        while time.monotonic() < deadline:
            session.write(note)
            session.read(note)
            time.sleep(0.05)
            session.read(note)
            session.read("hot")
            time.sleep(0.05)

    return script


def read_again_after_catch_up(
    stores: Stores, session: Session, other: Session
) -> Callable[[], None]:
    def script() -> None:
        shared = f"shared:{session.name}"
        other.write(shared)
        session.write(f"note:{session.name}")
        mine = stores.position("primary")  # at or just past the session's write
        time.sleep(GAP)
        other.write(shared)  # newer than the session's note
        session.read(shared)  # the replica has not applied the note yet
        stores.wait_for_replica(mine)  # the replica has the note, not yet the update
        session.read(shared)

    return script


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    with (
        Stores(lab_module) as stores,
        Sessions(lab_module.url("api"), History(), chaoslab_seed) as sessions,
    ):
        return record_scenario(Faults(lab_module), stores, sessions)


def record_scenario(faults: Faults, stores: Stores, sessions: Sessions) -> Scenario:
    stores.import_to(IMPORT_FIRST)
    stores.caught_up()

    # Phase 1: low lag.
    readers = [sessions.new(f"low-{n}") for n in range(1, 5)]
    writer = sessions.new("low-w")
    with faults.latency(LINK, LOW_LAG_MS) as low, writing(writer, "hot"):
        run_together(*(low_lag_reader(s) for s in readers))
    assert low.end is not None

    # Phase 2: lagging, from position 999 applied on both stores.
    scripts = [write_then_read(sessions.new(f"lag-{n}")) for n in range(1, 4)]
    scripts += [
        read_again_after_catch_up(stores, sessions.new(f"mono-{n}"), sessions.new(f"peer-{n}"))
        for n in range(1, 3)
    ]
    writer = sessions.new("lag-w")
    stores.import_to(10 ** len(str(stores.position("primary") + ROOM)) - 1)
    stores.caught_up()
    with faults.latency(LINK, LAG_MS), writing(writer, "hot"):
        run_together(*scripts)

    return Scenario(
        sessions.history,
        sessions.names,
        stores.versions(),
        faults.timeline,
        (low.start, low.end),
        {s.name for s in readers},
        stores.reads("primary"),
        stores.reads("replica"),
    )


# -- the checks ------------------------------------------------------------------------------
def test_1_read_your_writes(scenario: Scenario) -> None:
    errors = []
    reads = 0
    for name, ops in scenario.ops():
        mine: dict[str, tuple[str, int, Operation]] = {}  # key -> the session's last write
        for op in ops:
            key = op.value["key"]
            if op.status != "ok":
                errors.append(
                    f"session {name}: {op.f} {key} {scenario.at(op)} ended {op.status}: "
                    f"{op.error}; expected 200"
                )
                continue
            if op.f == "write":
                version = scenario.version(op.value["value"])
                if version is not None:
                    mine[key] = (op.value["value"], version, op)
                continue
            reads += 1
            got = scenario.version(op.result)
            if got is None:
                errors.append(
                    f"session {name} read {key} {scenario.at(op)} and got {op.result!r}, "
                    "a value nobody wrote"
                )
            elif key in mine and got < mine[key][1]:
                value, version, wrote = mine[key]
                errors.append(
                    f"session {name} read {key} {scenario.at(op)} and got "
                    f"{described(op.result, got)}; expected its own write {value!r} (log "
                    f"position {version}), made {op.start - (wrote.end or 0):.2f} s before, "
                    "or newer"
                )
    expect(
        CheckResult(
            "every session reads its own writes",
            "each read of a key the session wrote returns that write or a newer one, and "
            "every request is answered 200",
            f"{len(errors)} problem(s) in {reads} reads" if errors else f"all {reads} reads did",
            errors,
        ),
        during=scenario.timeline,
    )


def test_2_monotonic_reads(scenario: Scenario) -> None:
    errors = []
    reads = 0
    for name, ops in scenario.ops():
        newest: dict[str, tuple[str | None, int, Operation]] = {}  # key -> newest value read
        for op in ops:
            if op.f != "read" or op.status != "ok":
                continue
            reads += 1
            key = op.value["key"]
            got = scenario.version(op.result)
            if got is None:
                continue  # check 1 reports it
            if key in newest and got < newest[key][1]:
                value, version, before = newest[key]
                errors.append(
                    f"session {name} read {key} {scenario.at(op)} and got "
                    f"{described(op.result, got)}; it had read {described(value, version)} "
                    f"{op.start - (before.end or 0):.2f} s before; expected that or newer"
                )
            if key not in newest or got > newest[key][1]:
                newest[key] = (op.result, got, op)
    expect(
        CheckResult(
            "reads never go back in time within a session",
            "each read of a key returns the value the session read last for it, or a newer one",
            f"{len(errors)} of {reads} reads went back" if errors else f"none of {reads} did",
            errors,
        ),
        during=scenario.timeline,
    )


def test_3_the_replica_serves_most_reads_when_lag_is_low(scenario: Scenario) -> None:
    start, end = scenario.low_lag
    reads = [
        op
        for op in scenario.history.where(f="read")
        if scenario.names[op.client] in scenario.low_sessions
    ]
    window = (start - CLOCK_SLACK, end + CLOCK_SLACK)
    primary = [t for t in scenario.primary_reads if window[0] <= t <= window[1]]
    replica = [t for t in scenario.replica_reads if window[0] <= t <= window[1]]
    share = len(primary) / len(reads) if reads else 1.0
    errors = []
    if not reads:
        errors.append("the sessions made no reads while the lag was low; expected many")
    elif share > MAX_PRIMARY_SHARE:
        errors.append(
            f"{len(primary)} reads reached the primary for the sessions' {len(reads)} reads "
            f"({share:.0%}); expected at most {MAX_PRIMARY_SHARE:.0%}: the replica was "
            f"{LOW_LAG_MS} ms behind, and a session's own note was applied there "
            f"{LOW_LAG_MS} ms after it wrote it"
        )
    expect(
        CheckResult(
            "the replica serves most reads when the lag is low",
            f"at most {MAX_PRIMARY_SHARE:.0%} of the sessions' reads reach the primary while "
            f"the replica is {LOW_LAG_MS} ms behind",
            f"{len(reads)} reads by the sessions; the primary answered {len(primary)} reads, "
            f"the replica {len(replica)}",
            errors,
        ),
        during=scenario.timeline,
    )


# -- checks 4 and 5: a stalled replica ---------------------------------------------------------
@dataclass
class Answered:
    """A read of a session's own write: what it got, and how long it took."""

    op: Operation
    expected: str

    def problem(self) -> str | None:
        op = self.op
        took = op.latency or 0.0
        if op.status != "ok":
            return f"read {op.value['key']} ended {op.status} after {took:.2f} s: {op.error}"
        if op.result != self.expected:
            return f"read {op.value['key']} got {op.result!r}; expected {self.expected!r}"
        if took > READ_BOUND:
            return f"read {op.value['key']} took {took:.2f} s; expected at most {READ_BOUND:g} s"
        return None

    def describe(self) -> str:
        op = self.op
        got = op.result if op.status == "ok" else op.error
        return f"{op.value['key']} -> {got!r} in {(op.latency or 0.0):.2f} s"


@contextmanager
def stalled(lab: LabEnvironment, faults: Faults) -> Iterator[None]:
    """The replication link stalls; every position, on both stores, has 4 digits."""
    with Stores(lab) as stores:
        if stores.position("primary") < STALL_IMPORT_TO:
            stores.import_to(STALL_IMPORT_TO)
        stores.caught_up()
    with faults.latency(LINK, STALL_MS):
        yield


def test_4_a_stalled_replica_costs_a_bounded_wait(lab: LabEnvironment, faults: Faults) -> None:
    with Sessions(lab.url("api"), History()) as sessions:
        session = sessions.new("stalled")
        with stalled(lab, faults):
            wrote = session.write("note:stalled")
            reads: list[Answered] = []
            while len(reads) < STALLED_READS:
                reads.append(Answered(session.read("note:stalled"), str(wrote.value["value"])))
                if reads[-1].op.status != "ok":
                    break  # no answer in time: another read would only wait as long
    errors = [] if wrote.status == "ok" else [f"the write ended {wrote.status}: {wrote.error}"]
    errors += [problem for read in reads if (problem := read.problem()) is not None]
    expect(
        CheckResult(
            "a stalled replica costs a read a bounded wait, not a wrong or lost answer",
            f"while the replica is {STALL_MS} ms behind, each read of the session's own write "
            f"answered with that write within {READ_BOUND:g} s",
            f"wrote {wrote.value['value']!r}; " + "; ".join(r.describe() for r in reads),
            errors,
        ),
        during=faults.timeline,
    )


def test_5_a_session_survives_an_api_restart(lab: LabEnvironment, faults: Faults) -> None:
    with Sessions(lab.url("api"), History()) as sessions:
        session = sessions.new("restarted")
        with stalled(lab, faults):
            wrote = session.write("note:restarted")
            faults.kill("api")
            faults.restart("api")
            read = Answered(session.read("note:restarted"), str(wrote.value["value"]))
    errors = [] if wrote.status == "ok" else [f"the write ended {wrote.status}: {wrote.error}"]
    if (problem := read.problem()) is not None:
        errors.append(f"after the api restarted, {problem}")
    expect(
        CheckResult(
            "a session reads its own write after the api restarts",
            f"the session's read after the restart, with its Session-Token, answered with "
            f"its write within {READ_BOUND:g} s (the replica is {STALL_MS} ms behind)",
            f"wrote {wrote.value['value']!r}; the api crashed and restarted; then "
            + read.describe(),
            errors,
        ),
        during=faults.timeline,
    )
