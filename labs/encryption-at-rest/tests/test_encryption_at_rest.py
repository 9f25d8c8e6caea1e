"""The checks of encryption-at-rest: customers' documents written, rewritten and read while the
harness reads the disk, tampers with it, rotates the key-encryption key and takes the KMS away.

One scenario runs once for the module. Four clients, one per owner, write records, rewrite
them and read them back. Meanwhile the harness copies the database every 0.25 s (read-only,
as a backup tool would), asks for a backup, flips a byte of one stored ciphertext and moves
another onto a third record, rotates the KMS's key-encryption key and asks records to rewrap,
retires the old key and restarts records, then makes the link to the KMS slow and then down
while the clients go on and a new owner tries to write; last, another new owner's first two
records are written at the same moment, while the KMS takes 300 ms to wrap a key. The checks
judge the files on disk, the KMS's own record of what it wrapped, and the answers the clients
got.
"""

import contextlib
import itertools
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from harness import (
    CheckResult,
    Client,
    Faults,
    History,
    HttpControl,
    LabEnvironment,
    Operation,
    Traffic,
    expect,
)

OWNERS = ("acme", "globex", "initech", "umbrella")  # one per client
NEW_OWNER = "newco"  # writes only while the KMS is down
NEW_OWNER_RECORDS = ("newco-1", "newco-2")  # its first write, and its second try
# A new owner's first two records, sent at the same moment: both need the owner's data key,
# which does not exist yet. The KMS holds its answer to the first wrap TWIN_HOLD_MS (a healthy
# KMS's pace, well below a timeout a records would set on it), so the two overlap unless one
# reaches records that much later than the other.
TWIN_HOLD_MS = 300
TWIN_OWNER = "hooli"
TWIN_RECORDS = ("hooli-1", "hooli-2")
TWIN_CARDS = ("4111000011112222", "4111000033334444")
PAUSE = 0.02  # seconds a client waits between two steps
NEW_RECORD = 0.35  # the share of writes that make a new record (the others rewrite one)
CALM = 1.0  # seconds before the harness starts tampering
SNAPSHOT_EVERY = 0.25  # seconds between two read-only copies of the database
WARM_UP = 0.6  # seconds of traffic after the restart, before the KMS goes out
SLOW_MS = 1500  # records -> kms holds every answer this long
SLOW = 0.6
DOWN = 0.6
LATENCY_BOUND = 1.0  # seconds: a request of an owner records knows, while the KMS is out
MIN_JUDGED = 4
CLIENT_TIMEOUT = 10.0
NEW_OWNER_CARD = "4999888877776666"
OLD_KEK = "kek-1"  # the KMS's first key-encryption key, retired after the rotation
TAMPERED = ("t-flipped", "t-moved")  # records whose bytes the harness changes on disk
SOURCE = "t-source"  # the record whose ciphertext is moved onto t-moved


# -- the clients -----------------------------------------------------------------------------
@dataclass
class Written:
    """What the clients know they wrote: the last document of each record, by record id."""

    latest: dict[str, str] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)  # a write whose answer never came
    secrets: list[str] = field(default_factory=list)  # every card number ever written


def document(rng_digits: str, owner: str, record: str, version: int) -> tuple[str, str]:
    card = f"4{rng_digits}"
    return card, f"{owner}: record {record} v{version}, card {card}, expires 09/29, note ok"


def writing(url: str, written: Written, numbers: Iterator[int]) -> Callable[[Client], None]:
    """A client writes records of its own owner, rewrites them, and reads one back."""
    versions: dict[str, int] = defaultdict(int)

    def workload(client: Client) -> None:
        owner = OWNERS[client.id % len(OWNERS)]
        # list() takes the keys at once: the other clients add to it meanwhile
        mine = sorted(r for r in list(written.latest) if r.startswith(f"{owner}-"))
        if not mine or client.rng.random() < NEW_RECORD:
            record = f"{owner}-{next(numbers)}"
        else:
            record = client.rng.choice(mine)
        versions[record] += 1
        card, text = document(
            "".join(client.rng.choice("0123456789") for _ in range(15)),
            owner,
            record,
            versions[record],
        )
        written.secrets.append(card)
        written.uncertain.add(record)  # until the answer says it is stored
        with client.op("write", {"record": record, "owner": owner}) as op:
            answer = client.http.put(
                f"{url}/records/{record}", json={"owner": owner, "document": text}
            )
            if answer.status_code == 200:
                written.latest[record] = text
                written.uncertain.discard(record)
                op.ok({"status": 200})
            else:
                status = answer.status_code
                op.fail(f"HTTP {status}: {answer.text[:120]}", {"status": status})
        client.sleep(PAUSE)
        known = [r for r in mine if r not in written.uncertain]
        if known:
            read(client, url, written, client.rng.choice(known), "read")
        client.sleep(PAUSE)

    return workload


def read(client: Client, url: str, written: Written, record: str, f: str) -> None:
    expected = written.latest.get(record)
    with client.op(f, {"record": record}) as op:
        answer = client.http.get(f"{url}/records/{record}")
        got = answer.json().get("document") if answer.status_code == 200 else None
        if answer.status_code == 200 and got == expected:
            op.ok({"status": 200})
        elif answer.status_code == 200:
            op.fail(f"read back {got!r}, not what was written: {expected!r}", {"status": 200})
        else:
            op.fail(
                f"HTTP {answer.status_code}: {answer.text[:120]}", {"status": answer.status_code}
            )


# -- the disk --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    owner: str
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass
class Snapshot:
    """The two tables of records' database at one moment, read as a backup tool would."""

    at: float  # monotonic, when the copy began
    until: float = 0.0  # when it ended: a busy database keeps a reader waiting
    records: dict[str, Row] = field(default_factory=dict)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (kek, wrapped)
    error: str | None = None


def as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def snapshot(database: Path) -> Snapshot:
    taken = Snapshot(time.monotonic())
    try:
        con = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)
        try:
            for rid, owner, key_id, nonce, ct in con.execute(
                "SELECT id, owner, key_id, nonce, ciphertext FROM records"
            ):
                taken.records[str(rid)] = Row(
                    str(owner), str(key_id), as_bytes(nonce), as_bytes(ct)
                )
            for kid, kek, wrapped in con.execute("SELECT id, kek, wrapped_key FROM data_keys"):
                taken.keys[str(kid)] = (str(kek), str(wrapped))
        finally:
            con.close()
    except sqlite3.Error as exc:
        taken.error = f"{database.name} could not be read as the README's tables: {exc}"
    taken.until = time.monotonic()
    return taken


def on_disk(state: Path, needles: list[str]) -> dict[str, list[str]]:
    """Which of the needles each file under `state` holds, in plain bytes."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in state.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n for n in needles if n.encode() in data]
        if hits:
            found[str(path.relative_to(state))] = hits
    return found


def tamper(database: Path) -> list[str]:
    """Flip the first byte of t-flipped's ciphertext; put t-source's nonce and ciphertext on
    t-moved (one owner, one data key). What could not be done, if anything."""
    problems = []
    con = sqlite3.connect(database, timeout=5.0, isolation_level=None)
    try:
        rows = {
            str(r[0]): r[1:]
            for r in con.execute(
                "SELECT id, nonce, ciphertext FROM records WHERE id IN (?, ?, ?)",
                (*TAMPERED, SOURCE),
            )
        }
        if TAMPERED[0] in rows:
            ct = rows[TAMPERED[0]][1]
            flipped: bytes | str
            if isinstance(ct, bytes):
                flipped = bytes([ct[0] ^ 0x01]) + ct[1:]
            else:
                text = str(ct)
                flipped = ("B" if text[:1] != "B" else "C") + text[1:]
            con.execute("UPDATE records SET ciphertext = ? WHERE id = ?", (flipped, TAMPERED[0]))
        else:
            problems.append(
                f"record {TAMPERED[0]} was not stored, so it could not be tampered with"
            )
        if TAMPERED[1] in rows and SOURCE in rows:
            con.execute(
                "UPDATE records SET nonce = ?, ciphertext = ? WHERE id = ?",
                (*rows[SOURCE], TAMPERED[1]),
            )
        else:
            problems.append(f"records {TAMPERED[1]} and {SOURCE} were not both stored")
    except sqlite3.Error as exc:
        problems.append(f"the database could not be changed as the README's tables: {exc}")
    finally:
        con.close()
    return problems


# -- the KMS ---------------------------------------------------------------------------------
class Kms:
    """The checks' side of the KMS: the security team rotating and retiring its keys."""

    def __init__(self, lab: LabEnvironment) -> None:
        self.url = lab.direct_url("kms")

    def _call(self, method: str, path: str) -> dict[str, object]:
        answer = httpx.request(method, f"{self.url}{path}", timeout=10.0, trust_env=False)
        answer.raise_for_status()
        data: dict[str, object] = answer.json()
        return data

    def rotate(self) -> str:
        return str(self._call("POST", "/rotate")["kek"])

    def retire(self, kek: str) -> None:
        self._call("DELETE", f"/keks/{kek}")

    def issued(self) -> set[str]:
        issued = self._call("GET", "/issued")["issued"]
        return {str(w) for w in issued} if isinstance(issued, list) else set()


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario:
    history: History
    faults: Faults
    written: Written
    snapshots: list[Snapshot]
    before_rotation: Snapshot
    after_rewrap: Snapshot
    final: Snapshot
    rewrap: tuple[float, float, int, str]  # monotonic start, end, status, body
    new_kek: str
    issued: set[str]
    found: dict[str, list[str]]  # file -> the card numbers it holds in plain bytes
    backups: list[str]
    tamper_problems: list[str]
    wraps: int  # /wrap calls the KMS received

    def ops(self, *fs: str) -> list[Operation]:
        return [op for f in fs for op in self.history.where(f=f)]


class Driver:
    """The harness's side of the scenario: its own requests (recorded like a client's), the
    copies of the database it takes, and what it does to the disk and the KMS."""

    def __init__(self, lab: LabEnvironment, history: History) -> None:
        self.url = lab.url("records")
        self.state = lab.state_dir("records")
        self.database = self.state / "records.db"
        self.history = history
        self.http = httpx.Client(timeout=CLIENT_TIMEOUT, trust_env=False)
        self.snapshots: list[Snapshot] = []
        self.tamper_secrets: list[str] = []
        self.kms = HttpControl(lab, "kms")

    def request(
        self,
        f: str,
        method: str,
        path: str,
        value: dict[str, str],
        body: object = None,
        lane: int = 0,
    ) -> httpx.Response | None:
        """One request, recorded; requests at the same moment each take a lane of their own."""
        op = self.history.invoke(99 - lane, f, value)
        try:
            answer = self.http.request(method, f"{self.url}{path}", json=body)
        except httpx.HTTPError as exc:
            self.history.complete(op, "unknown", None, type(exc).__name__)
            return None
        result = {"status": answer.status_code, "body": answer.text[:160]}
        with contextlib.suppress(ValueError, AttributeError):
            result["document"] = answer.json().get("document")
        self.history.complete(op, "ok", result)
        return answer

    def pause(self, seconds: float) -> None:
        """Sleep, copying the database every SNAPSHOT_EVERY seconds meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.snapshots.append(snapshot(self.database))
            time.sleep(min(SNAPSHOT_EVERY, max(0.0, end - time.monotonic())))

    def snapshot(self) -> Snapshot:
        taken = snapshot(self.database)
        self.snapshots.append(taken)
        return taken

    def tamper_with_records(self) -> list[str]:
        for i, record in enumerate((*TAMPERED, SOURCE)):
            card = f"4000000000000{i:03d}"
            self.tamper_secrets.append(card)
            text = f"acme: record {record}, card {card}, to be tampered with"
            body = {"owner": "acme", "document": text}
            self.request("tamper-write", "PUT", f"/records/{record}", {"record": record}, body)
        problems = tamper(self.database)
        for record in TAMPERED:
            self.request("tampered", "GET", f"/records/{record}", {"record": record})
        return problems

    def rotate(self, kms: Kms) -> tuple[str, tuple[float, float, int, str], Snapshot, Snapshot]:
        before = self.snapshot()
        new_kek = kms.rotate()
        started = time.monotonic()
        answer = self.request("rewrap", "POST", "/admin/rewrap", {})
        rewrap = (
            started,
            time.monotonic(),
            answer.status_code if answer is not None else 0,
            answer.text[:200] if answer is not None else "no answer",
        )
        return new_kek, rewrap, before, self.snapshot()

    def reread_all(self, written: Written) -> None:
        for record, text in sorted(written.latest.items()):
            if record not in written.uncertain:
                value = {"record": record, "expected": text}
                self.request("reread", "GET", f"/records/{record}", value)

    def new_owner_writes(self) -> None:
        """Its first record, and when that was refused, a second try: a data key made for the
        first must not be used for the second once its wrap failed."""
        body = {"owner": NEW_OWNER, "document": f"{NEW_OWNER}: card {NEW_OWNER_CARD}"}
        for record in NEW_OWNER_RECORDS:
            self.request("new-owner", "PUT", f"/records/{record}", {"record": record}, body)

    def twin_writes(self, faults: Faults) -> None:
        """The first two records of an owner records has never seen, sent at the same moment,
        while the KMS holds its answer to the first wrap: whichever comes second finds no key
        yet, unless the first one's wrap is awaited."""

        def write(n: int) -> None:
            record, card = TWIN_RECORDS[n], TWIN_CARDS[n]
            body = {"owner": TWIN_OWNER, "document": f"{TWIN_OWNER}: card {card}"}
            self.request("twin-write", "PUT", f"/records/{record}", {"record": record}, body, n)

        with (
            faults.http("kms", path="/wrap", response_delay_ms=TWIN_HOLD_MS, first=1),
            ThreadPoolExecutor(len(TWIN_RECORDS)) as pool,
        ):
            list(pool.map(write, range(len(TWIN_RECORDS))))

    def wraps(self) -> list[dict[str, object]]:
        return [r for r in self.kms.received() if r.get("path") == "/wrap"]

    def backups(self) -> list[str]:
        folder = self.state / "backups"
        return sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    lab = lab_module
    faults, kms = Faults(lab), Kms(lab)
    traffic = Traffic(chaoslab_seed)
    driver = Driver(lab, traffic.history)
    written = Written()
    workload = writing(driver.url, written, itertools.count(1))
    with traffic.start(workload, clients=len(OWNERS), timeout=CLIENT_TIMEOUT) as run:
        driver.pause(CALM)
        driver.request("backup", "POST", "/admin/backup", {})
        tamper_problems = driver.tamper_with_records()
        new_kek, rewrap, before, after = driver.rotate(kms)
        driver.pause(0.2)
        run.stop()
    kms.retire(OLD_KEK)
    faults.restart("records")
    driver.reread_all(written)  # with no traffic: every record's last document is known
    with traffic.start(workload, clients=len(OWNERS), timeout=CLIENT_TIMEOUT) as run:
        driver.pause(WARM_UP)
        with faults.latency("records -> kms", SLOW_MS):
            driver.pause(SLOW)
        with faults.down("records -> kms"):
            driver.new_owner_writes()
            driver.pause(DOWN)
        for record in NEW_OWNER_RECORDS:
            driver.request("new-owner-read", "GET", f"/records/{record}", {"record": record})
        driver.twin_writes(faults)
        for record in TWIN_RECORDS:
            driver.request("twin-read", "GET", f"/records/{record}", {"record": record})
        driver.pause(0.2)
        run.stop()
    driver.http.close()
    final = driver.snapshot()
    secrets = [*written.secrets, *driver.tamper_secrets, NEW_OWNER_CARD, *TWIN_CARDS]
    wraps = len(driver.wraps())
    return Scenario(
        traffic.history,
        faults,
        written,
        driver.snapshots,
        before,
        after,
        final,
        rewrap,
        new_kek,
        kms.issued(),
        on_disk(driver.state, secrets),
        driver.backups(),
        tamper_problems,
        wraps,
    )


# -- helpers for the checks ------------------------------------------------------------------
def status_of(op: Operation) -> int | None:
    return op.result.get("status") if isinstance(op.result, dict) else None


def answered(op: Operation | None) -> str:
    """What a driver request got, for a message: `500 'Internal Server Error'`."""
    if op is None:
        return "never sent"
    body = op.result.get("body", "") if isinstance(op.result, dict) else ""
    return f"{status_of(op) or op.error} {body!r}"


def failed(ops: list[Operation]) -> list[str]:
    return [
        f"{op.f} {op.value.get('record', '')}: {op.error or 'no answer'}"
        for op in ops
        if op.status != "ok"
    ]


def overlapping(ops: list[Operation], start: float, end: float) -> list[Operation]:
    return [op for op in ops if op.start <= end and (op.end or op.start) >= start]


def snapshot_errors(scenario: Scenario) -> list[str]:
    return sorted({s.error for s in scenario.snapshots if s.error})


# -- the checks ------------------------------------------------------------------------------
def test_1_nothing_readable_on_disk(scenario: Scenario) -> None:
    # What was still in flight when the rewrap began is check 5's: it may meet the rotation.
    before = [
        op for op in scenario.ops("write", "read") if (op.end or op.start) < scenario.rewrap[0]
    ]
    errors = failed(before)
    for file, cards in scenario.found.items():
        errors.append(
            f"{file} holds {len(cards)} card numbers in plain bytes, e.g. {cards[0]}: anyone "
            "with the file (or a backup, or the disk) reads them"
        )
    if not scenario.backups:
        errors.append("POST /admin/backup wrote no file in $STATE_DIR/backups/")
    result = CheckResult(
        "nothing readable on disk",
        "every document written reads back as written, and no card number a client sent "
        "appears in plain bytes in any file records keeps (the database, its journal, the "
        "backups)",
        f"{sum(op.status == 'ok' for op in before)} of {len(before)} writes and reads before "
        f"the rotation succeeded; {len(scenario.found)} files hold plain card numbers; "
        f"{len(scenario.backups)} backups",
        errors,
    )
    expect(result.judging(before), during=scenario.faults.timeline)


def test_2_tampering_is_detected(scenario: Scenario) -> None:
    tampered = scenario.ops("tampered")
    errors = list(scenario.tamper_problems)
    how = {
        TAMPERED[0]: "its ciphertext's first byte flipped on disk",
        TAMPERED[1]: f"the nonce and ciphertext of {SOURCE} (same owner) copied onto it",
    }
    for op in tampered:
        record, status = op.value["record"], status_of(op)
        if status is None:
            errors.append(f"{record} ({how[record]}): no answer ({op.error})")
        elif status < 500:
            body = op.result.get("body") if isinstance(op.result, dict) else ""
            errors.append(
                f"{record} ({how[record]}): answered {status} {body!r}, not an error: "
                "changed bytes were read as a document"
            )
    result = CheckResult(
        "tampering is detected",
        f"a read of {TAMPERED[0]} ({how[TAMPERED[0]]}) and of {TAMPERED[1]} "
        f"({how[TAMPERED[1]]}) is answered with an error (5xx), never with a document",
        f"{len(tampered) - len(errors)} of {len(tampered)} tampered records were refused",
        errors,
    )
    expect(result.judging(tampered), during=scenario.faults.timeline)


def test_3_data_keys_are_wrapped_by_the_kms(scenario: Scenario) -> None:
    final = scenario.final
    errors = snapshot_errors(scenario)
    used = {row.key_id for row in final.records.values()}
    for key_id in sorted(used):
        if key_id not in final.keys:
            owners = sorted({r.owner for r in final.records.values() if r.key_id == key_id})
            errors.append(
                f"records of {', '.join(owners)} are sealed with key {key_id!r}, which has no "
                "row in data_keys: a key that is not wrapped by the KMS lives somewhere else "
                "(the code, the environment, the disk)"
            )
        elif final.keys[key_id][1] not in scenario.issued:
            errors.append(
                f"data key {key_id!r}: its wrapped_key is not one the KMS wrapped (the KMS "
                f"gave out {len(scenario.issued)}): is it stored unwrapped?"
            )
    if scenario.wraps == 0:
        errors.append("the KMS never received a /wrap: no data key was ever wrapped")
    result = CheckResult(
        "data keys are wrapped by the KMS",
        "every record names its data key in key_id, every such key has a row in data_keys, "
        "and the row's wrapped_key is one the KMS gave out (a key on disk is wrapped)",
        f"{len(final.records)} records use {len(used)} data keys; the KMS wrapped "
        f"{scenario.wraps} keys",
        errors,
    )
    expect(result)


def test_4_no_nonce_is_used_twice(scenario: Scenario) -> None:
    errors = snapshot_errors(scenario)
    sealed: dict[tuple[str, bytes], set[tuple[str, bytes]]] = defaultdict(set)
    for taken in scenario.snapshots:
        for record, row in taken.records.items():
            if record.startswith("t-"):
                continue  # the harness changed these bytes itself
            if not row.nonce:
                continue  # not sealed at all (no AEAD takes an empty nonce): check 1's matter
            sealed[(row.key_id, row.nonce)].add((record, row.ciphertext))
    reused = {k: v for k, v in sealed.items() if len(v) > 1}
    for (key_id, nonce), uses in sorted(reused.items())[:5]:
        records = sorted({r for r, _ in uses})
        errors.append(
            f"nonce {nonce.hex()[:24]} under data key {key_id!r} sealed {len(uses)} different "
            f"texts ({', '.join(records[:4])}): two texts under one key and one nonce give "
            "away their XOR, and with GCM the key to forge"
        )
    if len(reused) > 5:
        errors.append(f"... {len(reused)} nonces were used more than once in all")
    writes = scenario.ops("write")
    result = CheckResult(
        "no nonce is used twice",
        "in every copy of the database taken during the run (every 0.25 s), each (data key, "
        "nonce) pair sealed one text only",
        f"{len(sealed)} (data key, nonce) pairs seen in {len(scenario.snapshots)} copies, over "
        f"{len(writes)} writes; {len(reused)} used more than once",
        errors,
    )
    expect(result.judging(writes), during=scenario.faults.timeline)


def test_5_keys_rotate_without_downtime(scenario: Scenario) -> None:
    started, ended, status, body = scenario.rewrap
    errors = snapshot_errors(scenario)
    if status != 200:
        errors.append(f"POST /admin/rewrap answered {status}: {body}")
    during = overlapping(scenario.ops("write", "read"), started, ended)
    errors += [f"during the rewrap, {e}" for e in failed(during)]
    after = scenario.after_rewrap
    stale = sorted(k for k, (kek, _) in after.keys.items() if kek != scenario.new_kek)
    unwrapped = sorted({r.key_id for r in after.records.values()} - set(after.keys))
    if stale or unwrapped:
        errors.append(
            f"after the rewrap, {len(stale) + len(unwrapped)} data keys are not wrapped by "
            f"{scenario.new_kek}, the KMS's current key: "
            + ", ".join(stale + [f"{k} (no data_keys row)" for k in unwrapped])
        )
    # Records a client wrote between the two copies (with a margin) are sealed anew, rightly.
    copied = (scenario.before_rotation.at - 0.05, after.until + 0.5)
    touched = {op.value["record"] for op in overlapping(scenario.ops("write"), *copied)}
    resealed = sorted(
        record
        for record, row in scenario.before_rotation.records.items()
        if record not in touched
        and record in after.records
        and (after.records[record].nonce, after.records[record].ciphertext)
        != (row.nonce, row.ciphertext)
    )
    if resealed:
        errors.append(
            f"the rotation re-encrypted {len(resealed)} records nobody wrote meanwhile (e.g. "
            f"{resealed[0]}): rotating the key-encryption key rewraps data keys, it does not "
            "touch the data"
        )
    rereads = scenario.ops("reread")
    for op in rereads:
        got = status_of(op)
        document = op.result.get("document") if isinstance(op.result, dict) else None
        if got != 200 or document != op.value["expected"]:
            body = op.result.get("body") if isinstance(op.result, dict) else op.error
            errors.append(
                f"after {OLD_KEK} was retired and records restarted, {op.value['record']} "
                f"read back {got} {str(body)[:100]!r}"
            )
    result = CheckResult(
        "keys rotate without downtime",
        f"after the KMS rotated to {scenario.new_kek}, POST /admin/rewrap answers 200, every "
        "request meanwhile succeeds, every data key is then wrapped by the new key, no record "
        f"is re-encrypted, and with {OLD_KEK} retired and records restarted every record reads "
        "back",
        f"the rewrap took {ended - started:.2f} s with {len(during)} requests meanwhile; "
        f"{sum(status_of(op) == 200 for op in rereads)} of {len(rereads)} records read back "
        f"after {OLD_KEK} was retired",
        errors,
    )
    expect(result.judging(during or rereads), during=scenario.faults.timeline)


def test_6_known_owners_work_while_the_kms_is_out(scenario: Scenario) -> None:
    events = [e for e in scenario.faults.timeline.events if "records -> kms" in e.description]
    out_from = min(e.start for e in events)
    users = scenario.ops("write", "read")
    restarted = max(op.start for op in scenario.ops("reread")) if scenario.ops("reread") else 0
    known = {
        op.value["record"].split("-")[0]
        for op in users
        if op.status == "ok" and restarted <= op.start and (op.end or out_from) < out_from
    }
    during = [
        op
        for op in users
        if any(e.overlaps(op.start, op.end or op.start) for e in events)
        and op.value["record"].split("-")[0] in known
    ]
    errors = failed(during)
    for op in during:
        if op.status == "ok" and op.latency is not None and op.latency > LATENCY_BOUND:
            errors.append(
                f"{op.f} {op.value['record']} took {op.latency:.2f} s (at most "
                f"{LATENCY_BOUND:.1f} s): it waited for the KMS"
            )
    if len(during) < MIN_JUDGED:
        errors.append(f"only {len(during)} requests of known owners ran while the KMS was out")
    for op in scenario.ops("new-owner"):
        got = status_of(op)
        if got is None or got < 500:
            errors.append(
                f"PUT /records/{op.value['record']}, by {NEW_OWNER} (an owner with no data key"
                f" yet) while the KMS was down, was answered {got or op.error}, not an error:"
                " with no data key wrapped, nothing can be sealed"
            )
    for op in scenario.ops("new-owner-read"):
        if status_of(op) != 404:
            errors.append(
                f"after the KMS came back, GET /records/{op.value['record']} answered"
                f" {status_of(op)}, not 404: the write refused while the KMS was down was"
                " stored anyway"
            )
    plain = [f for f, cards in scenario.found.items() if NEW_OWNER_CARD in cards]
    if plain:
        errors.append(f"{NEW_OWNER}'s card number is on disk in plain bytes, in {plain[0]}")
    result = CheckResult(
        "known owners work while the KMS is out",
        f"while records -> kms held answers {SLOW_MS} ms, then refused connections, every "
        f"request for an owner records had served since its restart succeeds within "
        f"{LATENCY_BOUND:.1f} s; a new owner's first write and its second try are refused (5xx)"
        " and store nothing",
        f"{sum(op.status == 'ok' for op in during)} of {len(during)} requests of "
        f"{len(known)} known owners succeeded, the slowest in "
        f"{max((op.latency or 0.0 for op in during), default=0.0):.2f} s",
        errors,
    )
    expect(result.judging(during), during=events)


def test_7_two_first_writes_of_a_new_owner_both_work(scenario: Scenario) -> None:
    errors = []
    writes = {op.value["record"]: op for op in scenario.ops("twin-write")}
    reads = {op.value["record"]: op for op in scenario.ops("twin-read")}
    for n, record in enumerate(TWIN_RECORDS):
        write, read = writes.get(record), reads.get(record)
        if write is None or status_of(write) != 200:
            errors.append(f"PUT /records/{record} answered {answered(write)}, not 200")
            continue
        document = read.result.get("document") if read and isinstance(read.result, dict) else None
        if read is None or status_of(read) != 200 or TWIN_CARDS[n] not in str(document):
            errors.append(
                f"GET /records/{record} answered {answered(read)}, not the document written: "
                "was it sealed with a data key that is not the one kept?"
            )
    keys = {r.key_id for r in scenario.final.records.values() if r.owner == TWIN_OWNER}
    if len(keys) > 1:
        errors.append(f"{TWIN_OWNER}'s records are sealed with {len(keys)} data keys, not one")
    result = CheckResult(
        "two first writes of a new owner both work",
        f"two first records of {TWIN_OWNER} (an owner with no data key yet), written at the same"
        f" moment while the KMS held its answer to the first wrap {TWIN_HOLD_MS} ms, are both "
        "answered 200 and both read back as written, under one data key",
        f"{sum(status_of(op) == 200 for op in writes.values())} of {len(TWIN_RECORDS)} written, "
        f"{sum(status_of(op) == 200 for op in reads.values())} read back",
        errors,
    )
    expect(result.judging(list(writes.values())), during=scenario.faults.timeline)
