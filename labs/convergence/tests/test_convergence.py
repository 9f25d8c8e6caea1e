"""The checks of convergence: three replicas take likes and tags on both sides of a partition,
then must agree, losing nothing, once it heals.

One scenario runs once for the module; the numbered checks judge what it recorded. The checks'
own client writes to each replica through its Toxiproxy link and records every answer (the
history). The replicas send their states to each other through Toxiproxy, and the harness
delays 30 % of those deliveries by 200 ms, so they arrive out of order. Then:

1. Before the partition: likes on every replica and three tags on replica-a; once the replicas
   agree, an unlike and a tag removal on replica-c; they agree again.
2. Partition: replica-a on one side, replica-b and replica-c on the other. Writes on all three:
   likes and unlikes, and tags added and removed, one of them ("hot") removed on replica-b while
   replica-a adds it again. Reads on all three.
3. The partition heals; the scenario polls the three replicas until they agree.
4. Every replica is cut off from the others; the scenario replays to each one a sample of the
   state deliveries it received during the run (the service's record), newest first, each
   twice, and reads the replicas before and after.

Check 7 runs on its own, after the scenario: replica-a is restarted, a tag added to a post of
its own and removed, replica-a restarted again, and the tag added again.

What a replica says about its own state (its /state) is never evidence: the checks compare
what each replica answers to reads with the history of acknowledged writes.
"""

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness import (
    CheckResult,
    FaultEvent,
    Faults,
    History,
    HttpControl,
    LabEnvironment,
    Operation,
    Timeline,
    all_of,
    expect,
)

REPLICAS = ("replica-a", "replica-b", "replica-c")
MINORITY = ("replica-a",)
MAJORITY = ("replica-b", "replica-c")
LIKES = "p-likes"  # the post whose likes the scenario counts
TAGS = "p-tags"  # the post whose tags the scenario changes
POSTS = (LIKES, TAGS)

OP_TIMEOUT = 2.0  # seconds the checks' client waits for one answer
AVAILABLE_WITHIN = 1.0  # bound for every answer during the partition (a replica needs ~5 ms)
DELAY_MS = 200  # deliveries of state between replicas held this long...
DELAY_SHARE = 0.3  # ...this share of them, so newer states overtake older ones
# The partition goes on this long after the delays stop, so that no delivery held up by them
# lands after the heal (3 times the delay: ample on a loaded machine).
PARTITION_TAIL = 3 * DELAY_MS / 1000
SETTLE_WITHIN = 1.0  # seconds the scenario waits for replicas to agree before going on
CONVERGE_WITHIN = 2.0  # check 2: seconds after the heal by which all three replicas agree
POLL = 0.05  # seconds between two reads of all replicas while waiting for them to agree
ISOLATION_SETTLE = 0.2  # seconds for deliveries already on their way to land before the replay
REPLAY_SAMPLE = 24  # distinct deliveries replayed to each replica, spread over the run
REPLAY_TIMES = 2  # each delivered this many times

# The tags of p-tags after the heal (check 4), and why.
KEPT = {
    "new-a": "added on replica-a during the partition",
    "new-b": "added on replica-b during the partition",
    "new-c": "added on replica-c during the partition",
    "retro": "added before the partition and removed on replica-c, then added again on "
    "replica-b during it",
}
GONE = {
    "old": "added before the partition, removed on replica-a during it, never added again",
    "stale": "added on replica-a before the partition, removed on replica-b before it too, never"
    " added again",
}
CONTESTED = "hot"  # check 5: removed on replica-b while replica-a added it again
# Check 7: a tag added, removed, then added again on a replica restarted before each add.
RESTARTED = "replica-a"
AGAIN_POST = "p-again"
AGAIN = "again"

View = dict[str, Any]  # post -> {"likes": n, "tags": [...]}, or {"error": ...}


# -- the client's side -----------------------------------------------------------------------
class Writer:
    """The checks' client: one write or read on one replica, through its Toxiproxy link,
    recorded in the history (client number = the replica's index)."""

    def __init__(self, lab: LabEnvironment, history: History, http: httpx.Client) -> None:
        self.lab = lab
        self.history = history
        self.http = http

    def __call__(self, f: str, replica: str, post: str, tag: str | None = None) -> Operation:
        value = {"replica": replica, "post": post, **({"tag": tag} if tag else {})}
        op = self.history.invoke(REPLICAS.index(replica), f, value)
        url = f"{self.lab.url(replica)}/posts/{post}"
        try:
            if f in ("like", "unlike"):
                response = self.http.post(f"{url}/likes", json={"delta": 1 if f == "like" else -1})
            elif f == "add":
                response = self.http.post(f"{url}/tags", json={"tag": tag})
            elif f == "remove":
                response = self.http.delete(f"{url}/tags/{tag}")
            else:
                response = self.http.get(url)
        except httpx.ConnectError as exc:
            return self.history.complete(op, "fail", error=f"connection refused ({exc!r})")
        except httpx.TransportError as exc:
            return self.history.complete(op, "unknown", error=f"no answer ({exc!r})")
        if response.is_success:
            return self.history.complete(op, "ok", result=body_of(response))
        return self.history.complete(
            op, "fail", error=f"HTTP {response.status_code}: {response.text[:160]}"
        )


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:160]


def describe(op: Operation) -> str:
    """`add tag 'hot' on replica-a`, `like p-likes on replica-b`."""
    where = f"on {op.value['replica']}"
    if op.f in ("add", "remove"):
        return f"{op.f} tag {op.value['tag']!r} {where}"
    if op.f == "read":
        return f"read {op.value['post']} {where}"
    return f"{op.f} {op.value['post']} {where}"


def read_views(lab: LabEnvironment, http: httpx.Client) -> dict[str, View]:
    """What each replica answers for the scenario's posts, read without any proxy."""
    views: dict[str, View] = {}
    for replica in REPLICAS:
        view: View = {}
        for post in POSTS:
            try:
                response = http.get(f"{lab.direct_url(replica)}/posts/{post}")
            except httpx.HTTPError as exc:
                view[post] = {"error": f"no answer ({type(exc).__name__})"}
                continue
            body = body_of(response)
            if response.status_code == 200 and isinstance(body, dict):
                view[post] = {"likes": body.get("likes"), "tags": body.get("tags")}
            else:
                view[post] = {"error": f"HTTP {response.status_code}: {str(body)[:120]}"}
        views[replica] = view
    return views


def agreed(views: dict[str, View], replicas: tuple[str, ...] = REPLICAS) -> bool:
    first = views[replicas[0]]
    return all("error" not in first[post] for post in POSTS) and all(
        views[r] == first for r in replicas
    )


def wait_until_agreed(
    lab: LabEnvironment, http: httpx.Client, timeout: float, replicas: tuple[str, ...] = REPLICAS
) -> float | None:
    """Seconds until `replicas` answer the same for every post twice in a row; None if they
    still disagree after `timeout`."""
    start = time.monotonic()
    previous: dict[str, View] | None = None
    while time.monotonic() - start < timeout:
        views = read_views(lab, http)
        if agreed(views, replicas) and previous is not None and views == previous:
            return time.monotonic() - start
        previous = views
        time.sleep(POLL)
    return None


def shown(view: View, post: str) -> str:
    value = view[post]
    if "error" in value:
        return f"{post} unreadable ({value['error']})"
    if post == LIKES:
        return f"{count(value['likes'])} likes"
    return f"tags {value['tags']}"


def count(likes: object) -> str:
    """A count as the checks print it: a runaway one in short (`3.27e+69`)."""
    if isinstance(likes, int) and abs(likes) >= 10**9:
        return f"{likes:.2e}"
    return str(likes)


def shown_all(views: dict[str, View]) -> str:
    return "; ".join(
        f"{replica}: " + ", ".join(shown(view, post) for post in POSTS)
        for replica, view in views.items()
    )


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario:
    """What the scenario recorded: the history, the faults, and what the replicas answered."""

    history: History
    timeline: Timeline  # every fault, the replay's isolation included (check 6)
    final_at: float  # when the replicas' final answers were read (checks 2 to 5)
    partition: FaultEvent
    converged_after: float | None  # seconds from the heal until all three agreed
    final: dict[str, View]  # what each replica answered once they agreed (or at the bound)
    before_replay: dict[str, View]
    after_replay: dict[str, View]
    replayed: dict[str, int]  # deliveries replayed to each replica
    replay_errors: list[str]

    def faults_until_final(self) -> list[FaultEvent]:
        return [event for event in self.timeline.events if event.start <= self.final_at]

    def during_partition(self) -> list[Operation]:
        assert self.partition.end is not None
        return self.history.where(
            started_after=self.partition.start, started_before=self.partition.end
        )


@contextmanager
def delayed_deliveries(faults: Faults) -> Iterator[list[FaultEvent]]:
    rules = [
        faults.http(r, path="/merge", method="POST", delay_ms=DELAY_MS, share=DELAY_SHARE)
        for r in REPLICAS
    ]
    with all_of(*rules) as events:
        yield events


def replay(lab: LabEnvironment, http: httpx.Client) -> tuple[dict[str, int], list[str]]:
    """Deliver again to each replica a sample of the states it received: distinct ones spread
    over the run, newest first, each REPLAY_TIMES times."""

    def one(replica: str) -> tuple[int, list[str]]:
        received = HttpControl(lab, replica).received()
        distinct: dict[str, Any] = {}
        for request in received:
            body = request["body"]
            # A delivery cut off by a partition may have been recorded without its body.
            if request["path"] == "/merge" and isinstance(body, dict) and "state" in body:
                distinct.setdefault(json.dumps(body, sort_keys=True), body)
        bodies = list(distinct.values())
        if len(bodies) > REPLAY_SAMPLE:
            step = (len(bodies) - 1) / (REPLAY_SAMPLE - 1)
            bodies = [bodies[round(i * step)] for i in range(REPLAY_SAMPLE)]
        errors = []
        sent = 0
        for body in reversed(bodies):
            for _ in range(REPLAY_TIMES):
                sent += 1
                try:
                    response = http.post(f"{lab.url(replica)}/merge", json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"replaying a state to {replica} got no answer: {exc!r}")
                    continue
                if not response.is_success:
                    errors.append(
                        f"replaying a state from {body.get('from')} to {replica} was answered "
                        f"{response.status_code} {response.text[:120]}; expected 200"
                    )
        return sent, errors

    with ThreadPoolExecutor(len(REPLICAS)) as pool:
        results = dict(zip(REPLICAS, pool.map(one, REPLICAS), strict=True))
    return (
        {replica: sent for replica, (sent, _) in results.items()},
        [error for _, errors in results.values() for error in errors],
    )


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment) -> Scenario:
    lab = lab_module
    faults = Faults(lab)
    history = History()
    with httpx.Client(trust_env=False, timeout=OP_TIMEOUT) as http:
        write = Writer(lab, history, http)

        with delayed_deliveries(faults):
            for replica, n in (("replica-a", 3), ("replica-b", 2), ("replica-c", 2)):
                for _ in range(n):
                    write("like", replica, LIKES)
            for tag in ("hot", "old", "retro", "stale"):
                write("add", "replica-a", TAGS, tag)
            wait_until_agreed(lab, http, SETTLE_WITHIN)
            write("unlike", "replica-c", LIKES)
            write("remove", "replica-c", TAGS, "retro")
            write("remove", "replica-b", TAGS, "stale")
            wait_until_agreed(lab, http, SETTLE_WITHIN)

        with faults.partition(MINORITY, MAJORITY) as partition:
            with delayed_deliveries(faults):
                write("add", "replica-c", TAGS, "new-c")
                wait_until_agreed(lab, http, SETTLE_WITHIN, MAJORITY)
                write("add", "replica-a", TAGS, CONTESTED)
                write("remove", "replica-b", TAGS, CONTESTED)
                write("remove", "replica-a", TAGS, "old")
                write("add", "replica-a", TAGS, "new-a")
                for replica, ups, downs in (
                    ("replica-a", 4, 1),
                    ("replica-b", 3, 1),
                    ("replica-c", 2, 0),
                ):
                    for _ in range(ups):
                        write("like", replica, LIKES)
                    for _ in range(downs):
                        write("unlike", replica, LIKES)
                write("add", "replica-b", TAGS, "retro")
                write("add", "replica-b", TAGS, "new-b")
                for replica in REPLICAS:
                    for post in POSTS:
                        write("read", replica, post)
            time.sleep(PARTITION_TAIL)

        converged_after = wait_until_agreed(lab, http, CONVERGE_WITHIN)
        final = read_views(lab, http)
        final_at = time.monotonic()

        with faults.partition(MINORITY, MAJORITY), faults.partition(["replica-b"], ["replica-c"]):
            time.sleep(ISOLATION_SETTLE)
            before = read_views(lab, http)
            replayed, replay_errors = replay(lab, http)
            after = read_views(lab, http)

    return Scenario(
        history,
        faults.timeline,
        final_at,
        partition,
        converged_after,
        final,
        before,
        after,
        replayed,
        replay_errors,
    )


# -- the checks ------------------------------------------------------------------------------
def test_1_every_replica_stays_available_while_partitioned(scenario: Scenario) -> None:
    ops = scenario.during_partition()
    errors = []
    for op in ops:
        at = op.start - scenario.partition.start
        if op.status != "ok":
            errors.append(
                f"{describe(op)}, {at:.2f} s into the partition, got {op.error or op.status};"
                " expected an answer (2xx)"
            )
        elif op.latency is not None and op.latency > AVAILABLE_WITHIN:
            errors.append(
                f"{describe(op)}, {at:.2f} s into the partition, took"
                f" {op.latency * 1000:.0f} ms; bound {AVAILABLE_WITHIN * 1000:.0f} ms"
            )
    for replica in REPLICAS:
        if not any(op.value["replica"] == replica and op.f != "read" for op in ops):
            errors.append(f"no write was sent to {replica} during the partition")
    slowest = max((op.latency or 0.0 for op in ops), default=0.0)
    ok = sum(1 for op in ops if op.status == "ok")
    expect(
        CheckResult(
            "every replica stays available while partitioned",
            "every write and read on either side of the partition answered 2xx within"
            f" {AVAILABLE_WITHIN * 1000:.0f} ms",
            f"{ok} of {len(ops)} answered 2xx; the slowest took {slowest * 1000:.0f} ms",
            errors,
        ),
        during=scenario.faults_until_final(),
    )


def test_2_replicas_converge_after_the_partition_heals(scenario: Scenario) -> None:
    errors = []
    if scenario.converged_after is None:
        errors.append(
            f"{CONVERGE_WITHIN:g} s after the heal the replicas still disagree (or kept"
            f" changing): {shown_all(scenario.final)}"
        )
    view = scenario.final["replica-a"]
    observed = (
        f"all three answered {', '.join(shown(view, post) for post in POSTS)}"
        f" {scenario.converged_after:.2f} s after the heal"
        if scenario.converged_after is not None
        else "no agreement"
    )
    expect(
        CheckResult(
            "replicas converge after the partition heals",
            f"within {CONVERGE_WITHIN:g} s of the heal, all three replicas answer the same likes"
            f" and tags for {LIKES} and {TAGS}, twice in a row {POLL * 1000:.0f} ms apart",
            observed,
            errors,
        ),
        during=scenario.faults_until_final(),
    )


def test_3_no_acknowledged_like_or_unlike_is_lost(scenario: Scenario) -> None:
    ops = [op for op in scenario.history if op.f in ("like", "unlike")]
    acked = {"like": 0, "unlike": 0}
    per_replica = {r: {"like": 0, "unlike": 0} for r in REPLICAS}
    maybe_up = maybe_down = 0
    for op in ops:
        if op.status == "ok":
            acked[op.f] += 1
            per_replica[op.value["replica"]][op.f] += 1
        elif op.status == "unknown":
            maybe_up += op.f == "like"
            maybe_down += op.f == "unlike"
    low = acked["like"] - acked["unlike"] - maybe_down
    high = acked["like"] - acked["unlike"] + maybe_up
    wanted = f"{low}" if low == high else f"between {low} and {high}"
    breakdown = ", ".join(f"{r} +{n['like']} -{n['unlike']}" for r, n in per_replica.items())
    errors = []
    for replica, view in scenario.final.items():
        value = view[LIKES]
        if "error" in value:
            errors.append(f"{replica} did not answer a read of {LIKES}: {value['error']}")
        elif not isinstance(value["likes"], int) or not low <= value["likes"] <= high:
            errors.append(
                f"{replica} counts {count(value['likes'])} likes on {LIKES}; expected {wanted}"
                f" ({acked['like']} acknowledged likes - {acked['unlike']} unlikes)"
            )
    expect(
        CheckResult(
            "no acknowledged like or unlike is lost",
            f"after the heal, every replica counts {wanted} likes on {LIKES}: the acknowledged"
            f" likes minus unlikes ({breakdown})",
            "; ".join(f"{r}: {shown(v, LIKES)}" for r, v in scenario.final.items()),
            errors,
        ),
        during=scenario.faults_until_final(),
    )


def test_4_every_tag_change_survives_the_heal(scenario: Scenario) -> None:
    errors = []
    for replica, view in scenario.final.items():
        value = view[TAGS]
        if "error" in value:
            errors.append(f"{replica} did not answer a read of {TAGS}: {value['error']}")
            continue
        tags = set(value["tags"] or [])
        errors += [
            f"{replica} lacks tag {tag!r} ({why}); expected it there"
            for tag, why in KEPT.items()
            if tag not in tags
        ]
        errors += [
            f"{replica} has tag {tag!r} ({why}); expected it gone"
            for tag, why in GONE.items()
            if tag in tags
        ]
    expect(
        CheckResult(
            "every tag change survives the heal",
            f"after the heal, every replica has tags {sorted(KEPT)} on {TAGS} and not"
            f" {sorted(GONE)}",
            "; ".join(f"{r}: {shown(v, TAGS)}" for r, v in scenario.final.items()),
            errors,
        ),
        during=scenario.faults_until_final(),
    )


def test_5_a_concurrent_add_wins_over_a_remove(scenario: Scenario) -> None:
    errors = []
    for replica, view in scenario.final.items():
        value = view[TAGS]
        if "error" in value:
            errors.append(f"{replica} did not answer a read of {TAGS}: {value['error']}")
        elif CONTESTED not in (value["tags"] or []):
            errors.append(
                f"{replica} lacks tag {CONTESTED!r}: replica-b removed it while replica-a,"
                " on the other side of the partition, added it again; expected it there (add"
                " wins)"
            )
    expect(
        CheckResult(
            "a concurrent add wins over a remove",
            f"after the heal, every replica has tag {CONTESTED!r} on {TAGS}",
            "; ".join(f"{r}: {shown(v, TAGS)}" for r, v in scenario.final.items()),
            errors,
        ),
        during=scenario.faults_until_final(),
    )


def test_6_a_state_merged_again_or_late_changes_nothing(scenario: Scenario) -> None:
    errors = list(scenario.replay_errors)
    for replica in REPLICAS:
        before, after = scenario.before_replay[replica], scenario.after_replay[replica]
        for post in POSTS:
            if before[post] != after[post]:
                errors.append(
                    f"{replica} answered {shown(before, post)} for {post} before"
                    f" {scenario.replayed[replica]} deliveries of states it had already merged,"
                    f" and {shown(after, post)} after; expected no change"
                )
    expect(
        CheckResult(
            "a state merged again, or late, changes nothing",
            "each replica, cut off from the others, answers the same for every post before"
            f" and after up to {REPLAY_SAMPLE} states it had received are delivered again,"
            f" oldest last, {REPLAY_TIMES} times each",
            "before: "
            + shown_all(scenario.before_replay)
            + "; after: "
            + shown_all(scenario.after_replay),
            errors,
        ),
        during=scenario.timeline,
    )


def test_7_a_tag_added_after_a_restart_is_a_new_add(lab: LabEnvironment, faults: Faults) -> None:
    history = History()
    with httpx.Client(trust_env=False, timeout=OP_TIMEOUT) as http:
        write = Writer(lab, history, http)
        faults.kill(RESTARTED)
        faults.restart(RESTARTED)
        first = write("add", RESTARTED, AGAIN_POST, AGAIN)
        removed = write("remove", RESTARTED, AGAIN_POST, AGAIN)
        faults.kill(RESTARTED)
        faults.restart(RESTARTED)
        again = write("add", RESTARTED, AGAIN_POST, AGAIN)
        read = write("read", RESTARTED, AGAIN_POST)
    steps = [first, removed, again, read]
    errors = [f"{describe(op)} got no success: {op.error}" for op in steps if op.status != "ok"]
    tags = read.result.get("tags") if isinstance(read.result, dict) else None
    if not errors and (not isinstance(tags, list) or AGAIN not in tags):
        errors.append(
            f"{RESTARTED} answered tags {tags} for {AGAIN_POST} right after it acknowledged the "
            f"add of {AGAIN!r}: the add is lost (an id it gave this add after its restart may be "
            "one it gave, and tombstoned, before)"
        )
    expect(
        CheckResult(
            "a tag added after a restart is a new add",
            f"{RESTARTED} restarts, adds {AGAIN!r} to {AGAIN_POST} and removes it, restarts "
            f"again and adds {AGAIN!r} again: a read of {AGAIN_POST} on {RESTARTED} shows it",
            f"tags of {AGAIN_POST} on {RESTARTED} at the end: {tags}",
            errors,
        ),
        during=faults.timeline,
    )
