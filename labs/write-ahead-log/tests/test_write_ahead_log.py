"""The checks of write-ahead-log: writes acknowledged by kv, then crashes, power cuts and a
torn log, judged by reading every key back after the restart.

What kv says about itself is never evidence: each check compares what its own clients were
told ("ok" for a write) with what a fresh kv, started from the files a crash left behind,
answers for every key afterwards (through the proxy, like any client). Keys are named per
check, so the checks can share one kv and its STATE_DIR.

1. Concurrent writers, and kv killed (SIGKILL) in the middle of them, three times.
2. Writers, then a power cut: every byte kv did not fsync is gone (harness `power_loss`).
3. A torn tail: the check cuts kv's newest file mid-record while kv is down, adds garbage;
   later it cuts a record 3 bytes in (inside any header).
4. Many overwrites of a few keys: the files must stay short (compaction).
5. A power cut right after a compaction.
6. A crash at the moment a compaction empties a file to rewrite it (harness
   `crash_after_truncate`); kv killed after the writes instead if that moment never comes.
"""

import contextlib
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness import (
    CheckResult,
    Client,
    Faults,
    History,
    LabEnvironment,
    Operation,
    ServiceNotReady,
    Traffic,
    expect,
)

SERVICE = "kv"
WRITERS = 4  # concurrent clients in checks 1, 2 and 4
KEYS_PER_WRITER = 4  # each writer overwrites its own keys, in turn
WRITE_PHASE = 0.25  # seconds of writes before each crash in checks 1 and 2
KILL_ROUNDS = 3  # check 1: write, kill mid-flight, restart, read everything back
# Check 2: a round ends with the writers stopped, so the last acknowledged write is the last
# thing kv did before the power cut. Two rounds: a fix that syncs a write only when the next
# one comes is caught unless both rounds end on a compaction (about 1 in 400 writes each).
POWER_ROUNDS = 2
CLIENT_TIMEOUT = 2.0  # seconds a write may take (an fsync per write, on a loaded machine)
# Check 3: the check writes these keys, then the victim (the last record, big enough that the
# cut lands inside it), kills kv, cuts the file and appends garbage: twice what it cut, so a
# reader that trusts the record's length without its checksum reads garbage as the value.
TORN_KEYS = 8
VICTIM_BYTES = 1000
CUT_BYTES = 300
GARBAGE_BYTES = 2 * CUT_BYTES
AFTER_TEAR_KEYS = 4
SHORT_TEAR = 3  # bytes of a record left by the second tear: fewer than any header
# Check 4: 200 overwrites of 4 KB values to 4 keys: 800 KB written, 16 KB live.
COMPACT_KEYS = 4
COMPACT_WRITES = 50  # per key (one writer per key)
VALUE_BYTES = 4096
DISK_BOUND = 200 * 1024  # a quarter of what was written; the live data is 16 KB of it
DISK_WAIT = 1.0  # seconds the files may take to come under the bound after the last write
# Check 5: sequential 4 KB overwrites until the files under STATE_DIR shrink (a compaction).
CUT_KEYS = 4
CUT_MAX_WRITES = 80  # 320 KB: more than any compaction trigger that passes check 4 needs
# Check 6: the same overwrites, with kv set to crash the first time it empties a file with data
# (the first step of a rewrite in place); a compaction to a new file never reaches that point.
MIDWAY_KEYS = 4
MIDWAY_MAX_WRITES = CUT_MAX_WRITES
CRASH_WAIT = 5.0  # seconds for kv to be seen dead once a write went unanswered


# -- talking to kv ---------------------------------------------------------------------------
@dataclass
class Read:
    """What GET /kv/{key} answered: the value, None for 404, or an error."""

    key: str
    value: str | None = None
    error: str = ""

    def describe(self) -> str:
        if self.error:
            return self.error
        return "nothing (404)" if self.value is None else shorten(self.value)


def shorten(value: str, keep: int = 24) -> str:
    return repr(value) if len(value) <= keep else f"{value[:keep]!r}... ({len(value)} chars)"


def put(http: httpx.Client, base: str, key: str, value: str) -> str:
    """One PUT; '' when kv answered 200 (the write is acknowledged), else what went wrong."""
    try:
        response = http.put(f"{base}/kv/{key}", json={"value": value}, timeout=CLIENT_TIMEOUT)
    except httpx.TransportError as exc:
        return f"no answer ({type(exc).__name__})"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:120]}"
    return ""


def get(http: httpx.Client, base: str, key: str) -> Read:
    try:
        response = http.get(f"{base}/kv/{key}", timeout=5.0)
    except httpx.TransportError as exc:
        return Read(key, error=f"GET failed: {type(exc).__name__}")
    if response.status_code == 404:
        return Read(key)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        return Read(key, error=f"GET answered {response.status_code}: {response.text[:120]}")
    value = body.get("value")
    if not isinstance(value, str):
        return Read(key, error=f"GET answered {body!r}, without a string value")
    return Read(key, value)


def read_all(lab: LabEnvironment, keys: list[str]) -> dict[str, Read]:
    with httpx.Client(trust_env=False) as http:
        return {key: get(http, lab.url(SERVICE), key) for key in keys}


def make_value(rng: random.Random, label: str, size: int) -> str:
    """A value that names its write (`label`), padded with random letters to `size`."""
    pad = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=max(0, size - len(label) - 1)))
    return f"{label}-{pad}"


def disk_bytes(lab: LabEnvironment) -> int:
    """How many bytes the files under kv's STATE_DIR hold."""
    total = 0
    for folder, _, files in os.walk(lab.state_dir(SERVICE)):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
                total += (Path(folder) / name).stat().st_size
    return total


# The last line of a traceback in kv's log: "12:00:01.5 struct.error: ...", "ValueError: ..."
RAISED = re.compile(r"(?:^|\s)([\w.]*(?:Error|error|Exception): .*)$")


def why_not_started(exc: ServiceNotReady) -> str:
    """The exception kv died of, from the end of its log (or the harness's last words)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    raised = [m.group(1) for m in map(RAISED.search, reversed(lines)) if m]
    return raised[0] if raised else lines[-1]


def restart(lab: LabEnvironment, faults: Faults, after: str) -> str:
    """Start kv again; '' when it came up. When it does not start from what the crash left,
    its files are put aside (so the next checks can run) and the reason is returned."""
    try:
        faults.restart(SERVICE)
        return ""
    except ServiceNotReady as exc:
        reason = why_not_started(exc)
    clear_state(lab)
    faults.restart(SERVICE)
    return f"kv did not start {after} ({reason})"


def clear_state(lab: LabEnvironment) -> None:
    for child in lab.state_dir(SERVICE).iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


# -- judging the writers' history against what a restarted kv answers ------------------------
@dataclass
class KeyWrites:
    """Every write of one key, in the order its one writer made them."""

    ops: list[Operation] = field(default_factory=list)

    def acknowledged(self) -> Operation | None:
        return next((op for op in reversed(self.ops) if op.status == "ok"), None)


def by_key(history: History) -> dict[str, KeyWrites]:
    keys: dict[str, KeyWrites] = {}
    for op in history.where(f="put"):
        keys.setdefault(op.value["key"], KeyWrites()).ops.append(op)
    return keys


def judge(writes: dict[str, KeyWrites], reads: dict[str, Read], when: str) -> list[str]:
    """Every key holds its last acknowledged value or a later attempted one, nothing else."""
    errors = []
    for key, kw in writes.items():
        read = reads[key]
        last_ok = kw.acknowledged()
        if read.error:
            errors.append(f"{when}: key {key}: {read.error}")
            continue
        if read.value is None:
            if last_ok is not None:
                errors.append(f"{when}: key {key} is gone; its {label(last_ok)} was acknowledged")
            continue
        position = next((i for i, op in enumerate(kw.ops) if op.value["value"] == read.value), None)
        if position is None:
            errors.append(f"{when}: key {key} holds {shorten(read.value)}, a value nobody wrote")
        elif last_ok is not None and position < kw.ops.index(last_ok):
            errors.append(
                f"{when}: key {key} holds {label(kw.ops[position])}, older than "
                f"{label(last_ok)}, which was acknowledged"
            )
    return errors


def label(op: Operation) -> str:
    """A write in words: `write w17` (its value names it, after the key)."""
    return "write " + str(op.value["value"])[len(op.value["key"]) + 1 :].split("-")[0]


def writers(lab: LabEnvironment, prefix: str, size: int = 100) -> Callable[[Client], None]:
    """The writers' workload: each client overwrites its own keys in turn, each value new."""
    base = lab.url(SERVICE)
    counters: dict[int, int] = {}
    lock = threading.Lock()

    def workload(client: Client) -> None:
        with lock:
            n = counters.get(client.id, 0)
            counters[client.id] = n + 1
        key = f"{prefix}-c{client.id}-k{n % KEYS_PER_WRITER}"
        value = make_value(client.rng, f"{key}-w{n}", size)
        with client.op("put", {"key": key, "value": value}) as op:
            response = client.http.put(f"{base}/kv/{key}", json={"value": value})
            if response.status_code != 200:
                op.fail(f"HTTP {response.status_code}")

    return workload


def verdict(name: str, expected: str, observed: str, errors: list[str]) -> CheckResult:
    return CheckResult(name, expected, observed, errors)


# -- the checks ------------------------------------------------------------------------------
def test_1_no_acknowledged_write_lost_across_kills(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    traffic = Traffic(chaoslab_seed)
    workload = writers(lab, "kill")
    errors: list[str] = []
    for round_ in range(1, KILL_ROUNDS + 1):
        with traffic.start(workload, clients=WRITERS, timeout=CLIENT_TIMEOUT) as run:
            time.sleep(WRITE_PHASE)
            faults.kill(SERVICE)  # the writers are in the middle of their writes
            run.stop()
        problem = restart(lab, faults, f"after kill {round_}")
        if problem:
            errors.append(problem)
        writes = by_key(traffic.history)
        errors += judge(writes, read_all(lab, list(writes)), f"after kill {round_}")
    counts = traffic.history.counts()
    expect(
        verdict(
            "no acknowledged write lost across kills",
            "after each kill -9 and restart, every key holds its last acknowledged value (or a "
            "later write that was in flight), and no value that nobody wrote",
            f"{KILL_ROUNDS} kills; writes: {counts.get('ok', 0)} acknowledged, "
            f"{counts.get('unknown', 0) + counts.get('fail', 0)} cut off",
            errors,
        ),
        during=faults.timeline,
    )


def test_2_no_acknowledged_write_lost_in_a_power_loss(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    traffic = Traffic(chaoslab_seed)
    workload = writers(lab, "power")
    errors: list[str] = []
    for round_ in range(1, POWER_ROUNDS + 1):
        traffic.run(workload, clients=WRITERS, duration=WRITE_PHASE, timeout=CLIENT_TIMEOUT)
        with faults.power_loss(SERVICE, restart=False):
            pass
        problem = restart(lab, faults, f"after power loss {round_}")
        if problem:
            errors.append(problem)
        writes = by_key(traffic.history)
        errors += judge(writes, read_all(lab, list(writes)), f"after power loss {round_}")
    counts = traffic.history.counts()
    expect(
        verdict(
            "no acknowledged write lost in a power loss",
            "after each power cut (every byte kv had not fsynced is gone) and restart, every "
            "key holds its last acknowledged value",
            f"{POWER_ROUNDS} power cuts; {counts.get('ok', 0)} writes acknowledged",
            errors,
        ),
        during=faults.timeline,
    )


def newest_file(folder: Path) -> Path | None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.stat().st_size), default=None)


def tear_newest_file(
    lab: LabEnvironment, faults: Faults, rng: random.Random
) -> tuple[Path | None, bytes, str]:
    """Cut kv's newest file (its log, as the last write went there) inside its last record and
    append garbage; returns the file, what it held before, and the tear in words."""
    torn = newest_file(lab.state_dir(SERVICE))
    if torn is None:
        return None, b"", "no file under STATE_DIR to tear"
    backup = torn.read_bytes()
    garbage = b"\xff" + rng.randbytes(GARBAGE_BYTES - 1)  # 0xff: never valid UTF-8
    with open(torn, "r+b") as file:
        file.truncate(max(0, len(backup) - CUT_BYTES))
        file.seek(0, os.SEEK_END)
        file.write(garbage)
    tear = (
        f"{torn.name} ({len(backup)} bytes) cut by {CUT_BYTES} bytes, then {GARBAGE_BYTES} "
        "bytes of garbage appended"
    )
    faults.timeline.mark(f"torn tail: {tear}")
    return torn, backup, tear


def tear_short(
    lab: LabEnvironment, faults: Faults, rng: random.Random, kept: dict[str, str]
) -> tuple[list[str], str]:
    """A write cut SHORT_TEAR bytes into its record, as a crash while its header was being
    appended leaves it: kv must start, `kept` must hold, and the key its whole value or
    nothing. Returns the errors and the tear in words."""
    state = lab.state_dir(SERVICE)
    sizes = {path: path.stat().st_size for path in state.rglob("*") if path.is_file()}
    key, value = "torn-short", make_value(rng, "torn-short-w0", 100)
    with httpx.Client(trust_env=False) as http:
        problem = put(http, lab.url(SERVICE), key, value)
    if problem:
        return [f"PUT {key} before the second tear: {problem}; expected 200"], "no second tear"
    faults.kill(SERVICE)
    grown = newest_file(state)
    if grown is None or grown.stat().st_size <= sizes.get(grown, 0) + SHORT_TEAR:
        # The write went to a new file (a compaction): there is no record to cut into.
        problem = restart(lab, faults, "after the second kill")
        return ([problem] if problem else []), "no second tear (the write went to a new file)"
    with open(grown, "r+b") as file:
        file.truncate(sizes.get(grown, 0) + SHORT_TEAR)
    tear = f"the record of {key} cut {SHORT_TEAR} bytes into it, in {grown.name}"
    faults.timeline.mark(f"torn tail: {tear}")
    problem = restart(lab, faults, f"with {tear}")
    if problem:
        return [problem], tear
    errors = []
    reads = read_all(lab, [*kept, key])
    for earlier, wanted in kept.items():
        if reads[earlier].value != wanted:
            errors.append(
                f"after the second tear, key {earlier} holds {reads[earlier].describe()}; "
                f"expected {shorten(wanted)} (acknowledged before it)"
            )
    if reads[key].value not in (None, value):
        errors.append(
            f"after the second tear, key {key} (the torn record) holds "
            f"{reads[key].describe()}; expected its whole value or nothing"
        )
    return errors, tear


def test_3_a_torn_tail_is_dropped(lab: LabEnvironment, faults: Faults, chaoslab_seed: int) -> None:
    rng = random.Random(f"{chaoslab_seed}:torn")
    base = lab.url(SERVICE)
    written = {f"torn-k{i}": make_value(rng, f"torn-k{i}-w0", 100) for i in range(TORN_KEYS)}
    victim = "torn-victim"
    victim_value = make_value(rng, "torn-victim-w0", VICTIM_BYTES)
    errors: list[str] = []
    # From an empty log, where nothing is overwritten: no compaction then rewrites the log
    # in the middle of this check (which would drop a torn tail that kv left in it).
    faults.kill(SERVICE)
    clear_state(lab)
    faults.timeline.mark("kv's files removed: this check starts from an empty log")
    faults.restart(SERVICE)
    with httpx.Client(trust_env=False) as http:
        for key, value in [*written.items(), (victim, victim_value)]:
            problem = put(http, base, key, value)
            if problem:
                errors.append(f"PUT {key} before the tear: {problem}; expected 200")

    faults.kill(SERVICE)
    torn, backup, tear = tear_newest_file(lab, faults, rng)
    try:
        faults.restart(SERVICE)
        started = True
    except ServiceNotReady as exc:
        started = False
        errors.append(f"kv did not start with a torn tail in {tear} ({why_not_started(exc)})")
        if torn is not None:
            torn.write_bytes(backup)  # undo the tear, so the next checks can run
        problem = restart(lab, faults, "even from its files as they were before the tear")
        if problem:
            errors.append(problem)

    if started:
        reads = read_all(lab, [*written, victim])
        for key, value in written.items():
            if reads[key].value != value:
                errors.append(
                    f"after the tear, key {key} holds {reads[key].describe()}; expected "
                    f"{shorten(value)} (acknowledged before the tear)"
                )
        if reads[victim].value not in (None, victim_value):
            errors.append(
                f"after the tear, key {victim} (the torn record) holds "
                f"{reads[victim].describe()}; expected its whole value or nothing"
            )
        # The tail must be gone from the disk, not only skipped: writes after it must survive.
        after = {
            f"torn-after-k{i}": make_value(rng, f"torn-after-k{i}-w0", 100)
            for i in range(AFTER_TEAR_KEYS)
        }
        with httpx.Client(trust_env=False) as http:
            for key, value in after.items():
                problem = put(http, base, key, value)
                if problem:
                    errors.append(f"PUT {key} after the tear: {problem}; expected 200")
        faults.kill(SERVICE)
        problem = restart(lab, faults, "after a kill that followed the tear")
        if problem:
            errors.append(problem)
        reads = read_all(lab, list(after))
        for key, value in after.items():
            if reads[key].value != value:
                errors.append(
                    f"after the tear, a write, a kill and a restart, key {key} holds "
                    f"{reads[key].describe()}; expected {shorten(value)} (acknowledged)"
                )
        problems, second = tear_short(lab, faults, rng, {**written, **after})
        errors += problems
        tear += f"; then {second}"
    expect(
        verdict(
            "a torn tail is dropped",
            "kv starts from a log whose last record is torn and followed by garbage, keeps "
            "every acknowledged write before it, and keeps the writes made after it; and "
            f"starts again from a log whose last record was cut {SHORT_TEAR} bytes into it "
            "(inside any header)",
            f"tore {tear}",
            errors,
        ),
        during=faults.timeline,
    )


def test_4_compaction_keeps_the_files_short(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    traffic = Traffic(chaoslab_seed)
    workload = writers(lab, "compact", VALUE_BYTES)
    history = traffic.run(
        workload, clients=COMPACT_KEYS, iterations=COMPACT_WRITES, timeout=CLIENT_TIMEOUT
    )
    deadline = time.monotonic() + DISK_WAIT
    size = disk_bytes(lab)
    while size > DISK_BOUND and time.monotonic() < deadline:
        time.sleep(0.05)
        size = disk_bytes(lab)
    written = sum(len(op.value["value"]) for op in history.where(f="put", status="ok"))
    errors = []
    if size > DISK_BOUND:
        errors.append(
            f"after {len(history.where(f='put', status='ok'))} acknowledged writes of "
            f"{VALUE_BYTES:,}-byte values, the files under STATE_DIR hold {size:,} bytes; "
            f"expected at most {DISK_BOUND:,}"
        )
    faults.kill(SERVICE)
    began = time.monotonic()
    problem = restart(lab, faults, "after the overwrites")
    took = time.monotonic() - began
    if problem:
        errors.append(problem)
    writes = by_key(history)
    errors += judge(writes, read_all(lab, list(writes)), "after a kill and restart")
    expect(
        verdict(
            "compaction keeps the files short",
            f"at most {DISK_BOUND:,} bytes under STATE_DIR after the overwrites, and every key "
            "holds its last value after a restart",
            f"{written:,} bytes of values written to {COMPACT_KEYS} keys; {size:,} bytes on "
            f"disk; kv was ready {took:.2f} s after the restart",
            errors,
        ),
        during=faults.timeline,
    )


def test_5_a_power_loss_right_after_compaction_loses_nothing(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    rng = random.Random(f"{chaoslab_seed}:cut")
    base = lab.url(SERVICE)
    last: dict[str, str] = {}
    errors: list[str] = []
    compacted_at = None
    size = disk_bytes(lab)
    with httpx.Client(trust_env=False) as http:
        for n in range(CUT_MAX_WRITES):
            key = f"cut-k{n % CUT_KEYS}"
            value = make_value(rng, f"{key}-w{n}", VALUE_BYTES)
            problem = put(http, base, key, value)
            if problem:
                errors.append(f"PUT {key} (write {n + 1}): {problem}; expected 200")
                break
            last[key] = value
            before, size = size, disk_bytes(lab)
            if size < before:
                compacted_at = n + 1
                break
    moment = (
        f"right after write {compacted_at}, whose files shrank (a compaction)"
        if compacted_at
        else f"after {CUT_MAX_WRITES} writes (the files never shrank)"
    )
    with faults.power_loss(SERVICE, restart=False):
        pass
    problem = restart(lab, faults, "after the power cut")
    if problem:
        errors.append(problem)
    reads = read_all(lab, list(last))
    for key, value in last.items():
        if reads[key].value != value:
            errors.append(
                f"after a power cut {moment}, key {key} holds {reads[key].describe()}; "
                f"expected {shorten(value)} (acknowledged)"
            )
    expect(
        verdict(
            "a power loss right after compaction loses nothing",
            "every key holds its last acknowledged value after a power cut that follows a "
            "compaction",
            f"power cut {moment}",
            errors,
        ),
        during=faults.timeline,
    )


def judge_values(
    written: dict[str, list[str]], acknowledged: dict[str, str], reads: dict[str, Read], moment: str
) -> list[str]:
    """Each key holds its last acknowledged value or a later one that was in flight."""
    errors = []
    for key, values in written.items():
        read, last_ok = reads[key], acknowledged.get(key)
        allowed = values[values.index(last_ok) :] if last_ok is not None else values
        if read.error:
            errors.append(f"after {moment}: key {key}: {read.error}")
        elif read.value is None:
            if last_ok is not None:
                errors.append(
                    f"after {moment}, key {key} holds nothing (404); expected "
                    f"{shorten(last_ok)} (acknowledged)"
                )
        elif read.value not in allowed:
            kind = "an older value" if read.value in values else "a value nobody wrote"
            expected = f"{shorten(last_ok)} (acknowledged)" if last_ok else "nothing"
            if len(allowed) > 1 or last_ok is None:
                expected += " or a later write that was in flight"
            errors.append(
                f"after {moment}, key {key} holds {shorten(read.value)}, {kind}; "
                f"expected {expected}"
            )
    return errors


def test_6_a_crash_during_compaction_loses_nothing(
    lab: LabEnvironment, faults: Faults, chaoslab_seed: int
) -> None:
    rng = random.Random(f"{chaoslab_seed}:midway")
    base = lab.url(SERVICE)
    written: dict[str, list[str]] = {}  # every value sent to a key, in order
    acknowledged: dict[str, str] = {}
    errors: list[str] = []
    crashed_at = None  # the write whose compaction emptied a file (and died there)
    count = 0
    try:
        with faults.crash_after_truncate(SERVICE, nth=1) as point:
            with httpx.Client(trust_env=False) as http:
                for n in range(MIDWAY_MAX_WRITES):
                    key = f"midway-k{n % MIDWAY_KEYS}"
                    value = make_value(rng, f"{key}-w{n}", VALUE_BYTES)
                    written.setdefault(key, []).append(value)
                    count = n + 1
                    problem = put(http, base, key, value)
                    if not problem:
                        acknowledged[key] = value
                        continue
                    if point.wait(timeout=CRASH_WAIT):
                        crashed_at = count  # in flight: it may have landed or not
                    else:
                        errors.append(f"PUT {key} (write {count}): {problem}; expected 200")
                    break
            if crashed_at is None:
                faults.kill(SERVICE)  # no file was emptied: the crash comes after the writes
            fired = point.fired  # final: kv is dead either way
    except ServiceNotReady:
        fired = True  # the point fired, and kv did not start from what it left
        problem = restart(lab, faults, "after it died while it emptied a file")
        if problem:
            errors.append(problem)
    if not fired:
        problem = restart(lab, faults, "after a kill that followed the writes")
        if problem:
            errors.append(problem)
    moment = (
        f"a crash right after write {crashed_at}'s compaction emptied a file to rewrite it"
        if crashed_at
        else f"a kill after write {count} (kv never emptied a file with data)"
    )
    errors += judge_values(written, acknowledged, read_all(lab, list(written)), moment)
    expect(
        verdict(
            "a crash during compaction loses nothing",
            "every key holds its last acknowledged value (or a later write that was in flight) "
            "after kv dies in the middle of a compaction",
            f"{moment}; {len(acknowledged)} keys, {count} writes sent",
            errors,
        ),
        during=faults.timeline,
    )
