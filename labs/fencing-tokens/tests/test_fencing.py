"""The checks of fencing-tokens: a lease holder paused past its lease, then let go to write.

One scenario runs once for the module. worker-a takes the lease and writes x = a1 and y = a2.
Its next write, y = a3, is held right before it leaves (after every check store_client made),
and worker-a is paused there (SIGSTOP). Once the lock says the lease is free, worker-b takes it
(a higher token) and writes x = b1 and x = b2; storage is killed and restarted; worker-a is
resumed and its held write goes out, with the lease it lost. Then worker-b writes x = b3, gives
the lease back, and worker-a takes it again and writes z = a4.

The checks judge from the harness-owned records only: the lock's grants (which token went to
whom, when), the workers' record of every request store_client sent and what storage answered,
and the values storage serves at the end. What a write is worth is decided by the lock's
record: a write is stale when, before it was sent, the lock had granted a higher token.

Check 4 sends one write of its own, with no token at all, and reads the key back.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness import CheckResult, Faults, LabEnvironment, Timeline, expect, wait_until

LEASE_TTL = 1.0  # seconds (lab.toml gives the lock LEASE_TTL = 1.0)
# worker-a reaches its breakpoint a few milliseconds after it is asked to write; 5 s is slack
# for a loaded machine, and only a save() that sends no write request at all waits it out.
HELD_WITHIN = 5.0
# The lease is free LEASE_TTL after worker-a's last renewal, by the lock's clock; the checks
# poll every 20 ms, and three times the ttl is slack for a loaded machine.
FREE_WITHIN = 3 * LEASE_TTL
HOLD_TIMEOUT = 30.0  # seconds the checks wait for the held write's answer (it is paused ~1.5 s)
WRITES = {"PUT", "POST", "PATCH", "DELETE"}
KEYS = ("x", "y", "z")


@dataclass
class Attempt:
    """One write a worker was asked for, as the worker recorded it."""

    worker: str
    key: str
    value: str
    token: int | None
    requests: list[dict[str, Any]]
    error: str | None

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Attempt":
        return cls(
            data["worker"],
            data["key"],
            data["value"],
            data["token"],
            data["requests"],
            data["error"],
        )

    @property
    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] in WRITES]

    @property
    def sent_at(self) -> float | None:
        return self.writes[0]["sent_at"] if self.writes else None

    @property
    def accepted(self) -> bool:
        return any(r["status"] is not None and 200 <= r["status"] < 300 for r in self.writes)

    def answers(self) -> str:
        if not self.writes:
            return "never sent (store_client.save sent no write request)" + (
                f"; {self.error}" if self.error else ""
            )
        shown = []
        for r in self.writes:
            status = r["status"] if r["status"] is not None else "no answer"
            shown.append(f"{r['method']} {r['path']} answered {status} {r.get('answer', '')}")
        return "; ".join(s.strip() for s in shown) + (f"; {self.error}" if self.error else "")

    def describe(self) -> str:
        return f"{self.worker}'s write {self.key} = {self.value} (lease token {self.token})"


@dataclass
class Scenario:
    """What the paused-holder scenario recorded."""

    attempts: list[Attempt]
    grants: list[dict[str, Any]]
    final: dict[str, str | None]
    timeline: Timeline
    notes: list[str] = field(default_factory=list)  # where the scenario itself went wrong

    def superseded_by(self, attempt: Attempt) -> dict[str, Any] | None:
        """The first grant of a higher token made before `attempt` was sent, if any."""
        if attempt.token is None or attempt.sent_at is None:
            return None
        for grant in self.grants:
            if (
                grant["kind"] == "grant"
                and grant["token"] > attempt.token
                and grant["at"] < attempt.sent_at
            ):
                return grant
        return None

    def stale(self) -> list[tuple[Attempt, dict[str, Any]]]:
        return [(a, g) for a in self.attempts if (g := self.superseded_by(a)) is not None]

    def valid(self) -> list[Attempt]:
        """Attempts by a worker that held the newest lease when it wrote."""
        return [a for a in self.attempts if a.token is not None and not self.superseded_by(a)]


class Worker:
    """The checks' handle on a harness-owned worker."""

    def __init__(self, lab: LabEnvironment, name: str) -> None:
        self.name = name
        self.url = lab.direct_url(name)

    def write(self, key: str, value: str, hold: bool = False) -> None:
        timeout = HOLD_TIMEOUT if hold else 10.0
        body = {"key": key, "value": value, "hold": hold}
        httpx.post(f"{self.url}/write", json=body, timeout=timeout, trust_env=False)

    def held(self) -> bool:
        answer = httpx.get(f"{self.url}/breakpoint", timeout=5.0, trust_env=False)
        return bool(answer.json()["held"])

    def release(self) -> None:
        httpx.post(f"{self.url}/release", timeout=5.0, trust_env=False)

    def give_back(self) -> None:
        httpx.post(f"{self.url}/lease/release", timeout=5.0, trust_env=False)

    def attempts(self) -> list[Attempt]:
        answer = httpx.get(f"{self.url}/attempts", timeout=5.0, trust_env=False)
        return [Attempt.from_record(a) for a in answer.json()]


def lease_free(lab: LabEnvironment) -> bool:
    answer = httpx.get(f"{lab.direct_url('lock')}/lease", timeout=5.0, trust_env=False)
    return answer.json()["holder"] is None


def read_value(lab: LabEnvironment, key: str) -> str | None:
    answer = httpx.get(f"{lab.url('storage')}/kv/{key}", timeout=5.0, trust_env=False)
    if answer.status_code == 404:
        return None
    try:
        return str(answer.json()["value"])
    except (ValueError, KeyError, TypeError):
        return f"<GET /kv/{key} answered {answer.status_code} {answer.text[:80]}>"


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment) -> Scenario:
    lab = lab_module
    faults = Faults(lab)
    a, b = Worker(lab, "worker-a"), Worker(lab, "worker-b")
    notes = []

    a.write("x", "a1")
    a.write("y", "a2")
    with ThreadPoolExecutor(1) as pool:
        held_write = pool.submit(a.write, "y", "a3", hold=True)
        held = (
            wait_until(lambda: a.held() or held_write.done(), HELD_WITHIN, every=0.01) and a.held()
        )
        if not held:
            notes.append(
                "worker-a's write y = a3 never reached storage: store_client.save sent no "
                "write request (PUT, POST, PATCH or DELETE) through the client it was given"
            )
        with faults.pause("worker-a"):
            if not wait_until(lambda: lease_free(lab), FREE_WITHIN, every=0.02):
                notes.append(f"the lock did not free worker-a's lease within {FREE_WITHIN:g} s")
            b.write("x", "b1")
            b.write("x", "b2")
            faults.kill("storage")
            faults.restart("storage")
        a.release()
        held_write.result()
    b.write("x", "b3")
    b.give_back()
    a.write("z", "a4")

    grants = httpx.get(f"{lab.direct_url('lock')}/grants", timeout=5.0, trust_env=False).json()
    attempts = sorted(a.attempts() + b.attempts(), key=lambda t: t.sent_at or float("inf"))
    final = {key: read_value(lab, key) for key in KEYS}
    return Scenario(attempts, grants, final, faults.timeline, notes)


def grant_words(grant: dict[str, Any], attempt: Attempt) -> str:
    assert attempt.sent_at is not None
    before = attempt.sent_at - grant["at"]
    return f"the lock had granted token {grant['token']} to {grant['worker']} {before:.2f} s before"


def test_1_no_stale_write_is_accepted(scenario: Scenario) -> None:
    stale = scenario.stale()
    errors = list(scenario.notes)
    for attempt, grant in stale:
        refused = [
            r for r in attempt.writes if r["status"] is not None and 400 <= r["status"] < 500
        ]
        if attempt.accepted or not refused:
            errors.append(
                f"{attempt.describe()}: {attempt.answers()}; {grant_words(grant, attempt)} it "
                "was sent; expected a refusal (409, any 4xx) and nothing stored"
            )
    if not stale and not scenario.notes:
        errors.append("no write was sent by a worker whose lease had been handed on")
    expect(
        CheckResult(
            "no write from a stale holder is accepted",
            "every write sent after the lock had granted a higher token than the writer's is "
            "refused by storage (4xx)",
            "; ".join(f"{a.describe()}: {a.answers()}" for a, _ in stale) or "no stale write",
            errors,
        ),
        during=scenario.timeline,
    )


def test_2_final_state_is_what_valid_holders_wrote(scenario: Scenario) -> None:
    last_valid: dict[str, Attempt] = {}
    for attempt in scenario.valid():
        if attempt.sent_at is not None:
            last_valid[attempt.key] = attempt
    errors = []
    for key in KEYS:
        want = last_valid.get(key)
        got = scenario.final[key]
        if want is None:
            errors.append(f"no valid lease holder wrote {key}: the scenario did not run")
        elif got != want.value:
            shown = "nothing (404)" if got is None else repr(got)
            culprits = [
                f"{a.describe()}, {a.answers()}" for a, _ in scenario.stale() if a.key == key
            ]
            came = f"; stale writes to {key}: {', '.join(culprits)}" if culprits else ""
            errors.append(
                f"storage has {key} = {shown}; expected {want.value!r}, the last value a valid "
                f"lease holder wrote there ({want.describe()}){came}"
            )
    expect(
        CheckResult(
            "the final state is what the valid lease holders wrote",
            "each key holds the last value written by a worker holding the newest lease: "
            + ", ".join(f"{k} = {v.value!r}" for k, v in last_valid.items()),
            "storage serves " + ", ".join(f"{k} = {scenario.final[k]!r}" for k in KEYS),
            errors,
        ),
        during=scenario.timeline,
    )


def test_3_work_continues_after_the_pause(scenario: Scenario) -> None:
    valid = scenario.valid()
    errors = []
    for attempt in scenario.attempts:
        if attempt.token is None:
            errors.append(
                f"{attempt.worker}'s write {attempt.key} = {attempt.value}: {attempt.error}"
            )
    for attempt in valid:
        if not attempt.accepted:
            errors.append(
                f"{attempt.describe()}: {attempt.answers()}; expected it stored (2xx): token "
                f"{attempt.token} was the newest the lock had granted"
            )
    expect(
        CheckResult(
            "work continues after the pause",
            "every write by the holder of the newest lease is stored, before and after the "
            "pause and the restart: " + ", ".join(f"{a.key} = {a.value}" for a in valid),
            f"{sum(a.accepted for a in valid)} of {len(valid)} stored",
            errors,
        ),
        during=scenario.timeline,
    )


def test_4_a_write_without_a_token_is_refused(lab_module: LabEnvironment) -> None:
    # The scenario healed every fault it injected: no reset needed (it would cost ~0.5 s).
    lab = lab_module
    key, body = "unleased", {"value": "no-lease"}
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        answer = http.put(f"{lab.url('storage')}/kv/{key}", json=body)
    stored = read_value(lab, key)
    errors = []
    if not 400 <= answer.status_code < 500:
        errors.append(
            f"PUT /kv/{key} {body} with no fencing token was answered {answer.status_code} "
            f"{answer.text[:120]}; expected a refusal (400, any 4xx)"
        )
    if stored is not None:
        errors.append(f"storage has {key} = {stored!r} afterwards; expected nothing (404)")
    expect(
        CheckResult(
            "a write without a token is refused",
            "a PUT that carries no fencing token at all (as from a writer that never took the "
            "lease) is refused with a 4xx, and nothing is stored",
            f"answered {answer.status_code}; GET /kv/{key} then served {stored!r}",
            errors,
        )
    )
