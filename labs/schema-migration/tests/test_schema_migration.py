"""The checks of schema-migration: clients rename accounts and read them back through the load
balancer while the harness deploys releases 2, 3, 4 and 5, one replica at a time.

One scenario runs once for the module. Once both replicas run release 1, the harness writes
SEEDED accounts straight into the database (as years of customers would have): enough that a
backfill of all of them in one transaction holds its locks for a second or two. Four clients
each own a quarter of them: each renames one of its accounts, reads it back, and reads another
of its own, over and over. Meanwhile the harness deploys each release in turn: it stops a
replica (SIGTERM), starts it with the next RELEASE, waits until it is ready, lets it serve
beside the other (still on the release before) for SOAK seconds, then does the same to the
other. While two releases serve side by side, the harness also renames an account on each
replica and reads it on the other, and reads an account nobody renames on both, straight at
each replica; during the first deploy it renames one more account on release 2, then on
release 1.
The checks judge what the clients got, the load balancer's record, the database, and the
lock waits PostgreSQL logged.
"""

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness import CheckResult, Client, Faults, History, LabEnvironment, Operation, Traffic, expect
from harness.postgres.client import LockWait

# Accounts written before the deploys: enough that one UPDATE of all of them takes close to 2 s
# (1.8 s with nothing else running), long enough that the traffic certainly waits for it. With
# 200,000 the first rename to wait sometimes came half-way through, and waited only 0.48 s.
# The batched backfill takes about as long, in 300 short transactions.
SEEDED = 300_000
CLIENTS = 4
RELEASES = (2, 3, 4, 5)
BETWEEN = 0.1  # seconds of traffic before the first deploy, between two, and after the last
SOAK = 0.4  # seconds the first replica on a new release serves beside the other, on the old
GRACE = 5.0
CLIENT_TIMEOUT = 10.0
REPLICAS = ["accounts-1", "accounts-2"]
FINAL_COLUMNS = ["id", "full_name", "balance"]
QUIET_N = SEEDED  # a seeded account nobody renames: its seeded name, read on every release
QUIET = f"a-{QUIET_N}"
STRADDLE = "a-straddle"  # renamed on release 2, then on release 1, during the first deploy
STRADDLE_NAMES = ("Renamed on release 2", "Renamed on release 1")
# PostgreSQL logs a lock wait once it passes deadlock_timeout (the harness sets 100 ms): shorter
# waits are not seen at all. A backfill batch of a thousand rows holds its rows' locks for about
# 10 ms: in 8 runs of the solution (3 with both cores busy, 1 on docker), PostgreSQL logged no
# wait at all. One UPDATE of every row holds them until it commits, and the first rename of a
# row it has already changed waits for most of that: 0.81 s to 2.05 s in 9 runs (3 on docker,
# 3 with both cores busy). The bound sits between: 2.5 times the shortest wait PostgreSQL
# logs, under a third of the shortest wait one UPDATE caused.
LOCK_BOUND = 0.25
SQL_SHOWN = 90  # characters of a waiting statement a failure shows


def seeded_name(n: int) -> str:
    return f"Customer {n:06d}"


# seeded_name() in SQL, of an account's id: what a seeded account holds until someone renames it
SEEDED_NAME_SQL = "'Customer ' || lpad(substr(id, 3), 6, '0')"
SEEDED_ID_SQL = "id ~ '^a-[0-9]+$'"


def seeded_number(account: str) -> int | None:
    """N of a seeded account a-N; None for an account the harness created during the run."""
    number = account.removeprefix("a-")
    return int(number) if number.isdigit() and int(number) <= SEEDED else None


def seeded_name_of(account: str) -> str | None:
    """The name `account` was seeded with; None for an account the harness created."""
    number = seeded_number(account)
    return None if number is None else seeded_name(number)


def seed(lab: LabEnvironment) -> None:
    """Accounts a-0 to a-SEEDED, named as seeded_name() names them, in one statement."""
    with lab.postgres.connect() as db:
        db.execute(
            "INSERT INTO accounts (id, name) "
            "SELECT 'a-' || n, 'Customer ' || lpad(n::text, 6, '0') FROM generate_series(0, %s) n",
            (SEEDED,),
        )


@dataclass
class Books:
    """What the clients and the harness know they wrote. A seeded account that is in neither
    must still have its seeded name. (Clients own disjoint accounts: no two threads write one.)"""

    names: dict[str, str] = field(default_factory=dict)  # account -> the last name it was given
    unknown: set[str] = field(default_factory=set)  # a write failed: its name is not judged

    def wrote(self, account: str, name: str) -> None:
        self.names[account] = name
        self.unknown.discard(account)

    def lost_track(self, account: str) -> None:
        self.names.pop(account, None)
        self.unknown.add(account)

    def expected(self, account: str) -> str | None:
        """The name `account` must have now; None when unknown."""
        if account in self.unknown:
            return None
        return self.names[account] if account in self.names else seeded_name_of(account)


def customers(url: str, books: Books, numbers: Callable[[], int]) -> Callable[[Client], None]:
    def workload(client: Client) -> None:
        mine = range(client.id % CLIENTS, SEEDED, CLIENTS)
        account = f"a-{client.rng.choice(mine)}"
        name = f"Renamed {numbers()}"
        with client.op("rename", {"account": account, "name": name}) as op:
            answer = client.http.put(f"{url}/accounts/{account}", json={"name": name})
            if answer.status_code == 200:
                books.wrote(account, name)
                op.ok({"status": 200})
            else:
                op.fail(
                    f"HTTP {answer.status_code}: {answer.text[:120]}",
                    {"status": answer.status_code},
                )
                books.lost_track(account)  # unknown now: not judged until renamed again
                return
        for target in (account, f"a-{client.rng.choice(mine)}"):
            expected = books.expected(target)
            with client.op("read", {"account": target, "expected": expected}) as op:
                answer = client.http.get(f"{url}/accounts/{target}")
                if answer.status_code == 200:
                    by = answer.headers.get("x-served-by", "?")
                    op.ok({"status": 200, "name": answer.json().get("name"), "by": by})
                else:
                    status, by = answer.status_code, answer.headers.get("x-served-by", "?")
                    op.fail(f"HTTP {status} from {by}: {answer.text[:100]}", {"status": status})

    return workload


def straight() -> httpx.Client:
    """The harness's own client for requests straight at one replica. A new connection for
    each request (no keep-alive), as a replica may have restarted since the one before."""
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(timeout=CLIENT_TIMEOUT, limits=no_reuse, trust_env=False)


def straddle(lab: LabEnvironment, http: httpx.Client, books: Books, probes: list["Probe"]) -> None:
    """While release 2 and release 1 serve side by side, rename one account on release 2,
    then on release 1 (straight at each replica): the last name is release 1's. Then read it
    on release 2, where its full_name still holds release 2's."""
    for replica, name in zip(REPLICAS, STRADDLE_NAMES, strict=True):
        answer = http.put(f"{lab.url(replica)}/accounts/{STRADDLE}", json={"name": name})
        if answer.status_code != 200:
            books.lost_track(STRADDLE)  # check 1 tells of the failure
            return
        books.wrote(STRADDLE, name)
    probes.append(read_probe(lab, http, REPLICAS[0], STRADDLE, 2, STRADDLE_NAMES[-1]))


@dataclass(frozen=True)
class Probe:
    """A request the harness sent straight to one replica while two releases overlapped."""

    what: str  # "rename" or "read"
    account: str
    replica: str
    release: int  # the release being deployed
    status: int | None
    name: str | None = None  # what a read answered
    expected: str | None = None  # what it had to answer
    error: str = ""

    def __str__(self) -> str:
        return f"{self.what} {self.account} on {self.replica} during the deploy of {self.release}"


def cross(
    lab: LabEnvironment, http: httpx.Client, release: int, books: Books, probes: list[Probe]
) -> None:
    """While the new release (on the first replica) and the one before it (on the other) serve
    side by side: rename an account on each and read it on the other, and read QUIET on both.
    Straight at each replica, so that the overlap is tried every run, whatever the balancer's
    turn and however slow a restart is."""
    new, old = REPLICAS
    for writer, reader in ((old, new), (new, old)):
        account, name = f"a-cross-{release}-{writer}", f"Cross {release} via {writer}"
        try:
            answer = http.put(f"{lab.url(writer)}/accounts/{account}", json={"name": name})
            probes.append(Probe("rename", account, writer, release, answer.status_code,
                                error=answer.text[:100]))  # fmt: skip
        except httpx.HTTPError as exc:
            probes.append(Probe("rename", account, writer, release, None, error=repr(exc)))
            continue
        if answer.status_code != 200:
            continue
        books.wrote(account, name)
        for target, wanted in ((account, name), (QUIET, seeded_name(QUIET_N))):
            probes.append(read_probe(lab, http, reader, target, release, wanted))


def read_probe(
    lab: LabEnvironment, http: httpx.Client, reader: str, account: str, release: int, wanted: str
) -> "Probe":
    """Read `account` straight at `reader` while `release` is being deployed."""
    try:
        got = http.get(f"{lab.url(reader)}/accounts/{account}")
    except httpx.HTTPError as exc:
        return Probe("read", account, reader, release, None, None, wanted, repr(exc))
    said = got.json().get("name") if got.status_code == 200 else None
    return Probe("read", account, reader, release, got.status_code, said, wanted, got.text[:100])


@dataclass
class EndState:
    """The database once the deploys are over."""

    columns: list[str]
    # account -> its name (full_name, or name) for every account whose name is not its seeded
    # one: the accounts renamed or created, and any that lost its name
    changed: dict[str, Any]
    seeded_rows: int  # how many of the seeded accounts a-0 to a-SEEDED are still there

    def name_of(self, account: str) -> Any:
        """The name `account` holds; None when an account created during the run is not there
        (a seeded account that is not there reads as its seeded name: seeded_rows tells)."""
        return self.changed[account] if account in self.changed else seeded_name_of(account)


@dataclass
class Scenario:
    history: History
    books: Books
    end: EndState
    stops: list[tuple[str, Any]]
    faults: Faults
    probes: list[Probe]
    deploys: list[tuple[float, int]]  # (unix time it began, release)
    lock_waits: list[LockWait]

    def ops(self, f: str) -> list[Operation]:
        return self.history.where(f=f)


def final_state(lab: LabEnvironment) -> EndState:
    """Only the accounts whose name is not their seeded one leave the database (a few thousand
    of its 300,000 rows): the others are counted."""
    with lab.postgres.connect() as db:
        columns = [
            column
            for (column,) in db.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'accounts' ORDER BY ordinal_position"
            )
        ]
        column = "full_name" if "full_name" in columns else "name"
        not_seeded = f"{column} IS DISTINCT FROM {SEEDED_NAME_SQL}"
        changed: dict[str, Any] = dict(
            db.execute(f"SELECT id, {column} FROM accounts WHERE {not_seeded}")
        )
        (seeded_rows,) = db.execute(
            f"SELECT count(*) FROM accounts WHERE {SEEDED_ID_SQL}"
        ).fetchone() or (0,)
    return EndState(columns, changed, seeded_rows)


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    lab = lab_module
    seed(lab)
    books = Books()
    probes: list[Probe] = []
    counter = itertools.count(1)
    faults = Faults(lab)
    traffic = Traffic(chaoslab_seed)
    stops = []
    deploys: list[tuple[float, int]] = []
    work = customers(lab.url("lb"), books, lambda: next(counter))
    with straight() as http, traffic.start(work, clients=CLIENTS, timeout=CLIENT_TIMEOUT) as run:
        time.sleep(BETWEEN)
        for release in RELEASES:
            env = {"RELEASE": str(release)}
            deploys.append((time.time(), release))
            first, *rest = REPLICAS
            stops += faults.rolling_restart([first], grace=GRACE, env=env)
            ready = time.monotonic()  # the soak counts from here: the probes serve in it too
            if release == 2:
                straddle(lab, http, books, probes)
            cross(lab, http, release, books, probes)
            time.sleep(max(0.0, ready + SOAK - time.monotonic()))
            stops += faults.rolling_restart(rest, grace=GRACE, env=env)
            time.sleep(BETWEEN)
        history = run.stop()
    end = final_state(lab)
    waits = lab.postgres.lock_waits()
    return Scenario(history, books, end, stops, faults, probes, deploys, waits)


def statement(wait: LockWait) -> str:
    """` (the SQL that waited)`, shortened, or "" when the log had none."""
    sql = " ".join(wait.statement.split())
    if len(sql) > SQL_SHOWN:
        sql = sql[:SQL_SHOWN].rsplit(" ", 1)[0] + " ..."
    return f" ({sql})" if sql else ""


def when(wait: LockWait, deploys: list[tuple[float, int]]) -> str:
    """` during the deploy of release N`, when the log said when the wait ended."""
    if wait.at is None:
        return ""
    began = [release for at, release in deploys if at <= wait.at]
    return f" during the deploy of release {began[-1]}" if began else ""


def holder(lock: str) -> str:
    """What held the lock, in the learner's words."""
    if "on transaction" in lock:  # a row lock: waiting for the transaction that holds the row
        return "a transaction held rows that traffic writes"
    if "on relation" in lock:
        return "a transaction held the whole table (an ALTER TABLE, or an explicit LOCK)"
    return "another transaction held it"


# -- the checks ------------------------------------------------------------------------------
def test_1_no_request_fails_during_the_deploys(scenario: Scenario) -> None:
    ops = scenario.ops("rename") + scenario.ops("read")
    failed = [op for op in ops if op.status != "ok"]
    errors = [f"{op.f} {op.value['account']}: {op.error}" for op in failed]
    errors += [f"{p}: HTTP {p.status}: {p.error}" for p in scenario.probes if p.status != 200]
    if len(ops) < 20:
        errors.append(f"only {len(ops)} requests were made (report this)")
    result = CheckResult(
        "no request fails during the deploys",
        f"every rename and read is answered 200 while releases {', '.join(map(str, RELEASES))} "
        "are deployed, one replica at a time",
        f"{len(ops) - len(failed)} of {len(ops)} requests answered 200; "
        f"{sum(p.status == 200 for p in scenario.probes)} of {len(scenario.probes)} made "
        "straight at a replica while two releases overlapped",
        errors,
    )
    expect(result.judging(ops), during=scenario.faults.timeline)


def test_2_every_read_returns_the_last_write(scenario: Scenario) -> None:
    reads = [op for op in scenario.ops("read") if op.status == "ok"]
    errors = [
        f"read {op.value['account']} answered name {op.result.get('name')!r} (from "
        f"{op.result.get('by')}); the last rename its client made was {op.value['expected']!r}"
        for op in reads
        if op.value["expected"] is not None and op.result.get("name") != op.value["expected"]
    ]
    errors += [
        f"{p}: answered name {p.name!r}; it had to be {p.expected!r}"
        for p in scenario.probes
        if p.what == "read" and p.status == 200 and p.name != p.expected
    ]
    books, end = scenario.books, scenario.end
    wrong: dict[str, tuple[str | None, Any]] = {
        account: (name, end.name_of(account))
        for account, name in books.names.items()
        if end.name_of(account) != name
    }
    wrong |= {  # seeded accounts never renamed that lost their seeded name
        account: (books.expected(account), stored)
        for account, stored in end.changed.items()
        if seeded_number(account) is not None
        and account not in books.names
        and account not in books.unknown
    }
    errors += [
        f"account {account} holds {stored!r} in the database at the end; its last name was {name!r}"
        for account, (name, stored) in sorted(wrong.items())
    ]
    if end.seeded_rows != SEEDED + 1:
        errors.append(
            f"{SEEDED + 1 - end.seeded_rows} of the {SEEDED + 1} seeded accounts are missing "
            "from the database at the end"
        )
    created = sum(seeded_number(account) is None for account in books.names)
    lost = sum(seeded_number(account) is not None for account in books.unknown)
    compared = SEEDED + 1 - lost + created  # the seeded ones still known, and those created
    result = CheckResult(
        "every read returns the last write",
        "every read answers the name its account was last given (the seeded one if it was never "
        "renamed), whichever release answers; at the end, the database holds every account's "
        "last name",
        f"{len(reads)} reads answered, {compared} accounts compared at the end",
        errors,
    )
    expect(result.judging(reads), during=scenario.faults.timeline)


def test_3_the_final_schema_has_only_the_new_column(scenario: Scenario) -> None:
    errors = []
    if sorted(scenario.end.columns) != sorted(FINAL_COLUMNS):
        errors.append(
            f"the accounts table has columns {scenario.end.columns}; expected {FINAL_COLUMNS} "
            "(name renamed to full_name, and nothing else left over)"
        )
    result = CheckResult(
        "the final schema has only the new column",
        f"after release {RELEASES[-1]}, the accounts table's columns are {FINAL_COLUMNS}",
        f"columns {scenario.end.columns}",
        errors,
    )
    expect(result)


def test_4_the_backfill_holds_no_lock_that_stalls_traffic(scenario: Scenario) -> None:
    waits = scenario.lock_waits
    errors = [
        f"a statement waited {w.waited:.2f} s for {w.lock}{statement(w)}"
        f"{when(w, scenario.deploys)}: {holder(w.lock)}"
        for w in sorted(waits, key=lambda w: -w.waited)
        if w.waited > LOCK_BOUND
    ]
    longest = max((w.waited for w in waits), default=0.0)
    result = CheckResult(
        "the backfill holds no lock that stalls traffic",
        f"no statement waits longer than {LOCK_BOUND} s for a lock another transaction holds "
        "(as PostgreSQL logged its lock waits)",
        f"{len(waits)} lock wait{'' if len(waits) == 1 else 's'} logged (PostgreSQL logs those "
        "of 0.1 s or more)" + (f"; the longest {longest:.2f} s" if waits else ""),
        errors,
    )
    expect(result)
