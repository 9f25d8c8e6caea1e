"""The checks of jwt-auth: users place and read orders with bearer tokens while an attacker
sends forged ones, the keys rotate and the key service goes slow, then down.

One scenario runs once for the module. Four clients place orders (POST /orders, scope
orders:write) and read them back (GET /orders/{id}, scope orders:read) with tokens the key
service signed, some of them from a clock 2 s ahead. The keys rotate, and the clients use
tokens signed with the new key. Between, an attacker sends one request of each kind of bad
token; later the link from orders to the key service is slow (1.5 s; a stray token with a kid
nobody published makes orders fetch the JWKS meanwhile), then down; last, eight attackers send
tokens with kids nobody published. The checks judge what the harness recorded:
the answer each client got, the charges payments made, the JWKS fetches the key service
served and the token requests auth answered.
"""

import base64
import hashlib
import hmac
import itertools
import json
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

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
    hold,
    wait_until,
)

ISSUER = "https://auth.chaoslab.test"
JWKS = "/.well-known/jwks.json"
CLIENTS = 4
PAUSE = 0.02  # seconds a client waits between two orders
CALM = 1.0  # seconds at least before the keys rotate
QUIET_BEFORE_ROTATION = 1.5  # seconds since orders last fetched the JWKS, when they rotate
AFTER_ROTATION = 0.6  # seconds of traffic with the new key before the attacker comes
SKEW = 2  # seconds auth's clock runs ahead, for some of the users' tokens
SKEWED = f"key 1, auth's clock {SKEW} s ahead"  # their label; used until the keys rotate
SLOW_MS = 1500  # orders -> keys holds every answer this long in the slow phase
SLOW = 0.8  # seconds of it at least; it lasts until the stray token below is answered
# In the slow phase, once orders has not fetched the JWKS for this long (past any refetch
# throttle of 1 s, with margin), one token with a kid nobody published: orders fetches the
# JWKS for it, and that fetch takes SLOW_MS. A lookup of a known key that waits for it takes
# longer than LATENCY_BOUND.
STRAY_AFTER_QUIET = 1.1
DOWN = 0.6  # seconds of orders -> keys refusing connections
FLOOD_CLIENTS = 8
FLOOD_EACH = 5  # tokens with an unknown kid each attacker sends
LATENCY_BOUND = 1.0  # seconds: a request with a known key, while the key service is in trouble
REFETCH_WINDOW = 1.0  # seconds: orders may fetch the JWKS at most twice in any such window
MAX_IN_WINDOW = 2
TOKEN_RATE = 1.0  # token requests to auth per second, at most on average (tokens live 3 s)
TOKEN_SLACK = 2
MIN_JUDGED = 4  # operations a phase must have for a check to judge it
CLIENT_TIMEOUT = 10.0


# -- tokens ----------------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """header.payload of a JWT, before any signature."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def user_claims(scope: str, **override: Any) -> dict[str, Any]:
    now = time.time()
    claims = {
        "iss": ISSUER,
        "aud": "orders",
        "sub": f"user-{secrets.token_hex(3)}",
        "scope": scope,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 300,
        "jti": secrets.token_hex(8),
    }
    claims.update(override)
    return claims


class KeyService:
    """The checks' side of the key service: what the auth server would sign for users."""

    def __init__(self, lab: LabEnvironment) -> None:
        self.url = lab.direct_url("keys")

    def sign(self, claims: dict[str, Any]) -> str:
        answer = httpx.post(f"{self.url}/sign", json=claims, timeout=5.0, trust_env=False)
        answer.raise_for_status()
        return str(answer.json()["token"])

    def rotate(self) -> str:
        answer = httpx.post(f"{self.url}/rotate", timeout=10.0, trust_env=False)
        answer.raise_for_status()
        return str(answer.json()["kid"])

    def public_pem(self, kid: str) -> bytes:
        published = httpx.get(f"{self.url}{JWKS}", timeout=5.0, trust_env=False).json()
        jwk = next(k for k in published["keys"] if k["kid"] == kid)
        public = RSAAlgorithm.from_jwk(jwk)
        assert isinstance(public, rsa.RSAPublicKey)
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class Attack:
    """One bad request: what it is, the check that judges it, and the answer it must get."""

    name: str
    check: str
    token: str | None
    method: str = "POST"
    must: int = 401


def attacks(keys: KeyService, attacker: rsa.RSAPrivateKey) -> list[Attack]:
    """Every bad token the attacker sends, made while the first key still signs."""
    good = user_claims("orders:read orders:write")
    valid = keys.sign(good)
    kid = jwt.get_unverified_header(valid)["kid"]
    read_claims = user_claims("orders:read")
    read_only = keys.sign(read_claims)
    read_header, _, read_signature = read_only.split(".")
    widened = dict(read_claims, scope="orders:read orders:write")
    confused = unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, good)
    pem = keys.public_pem(kid)
    now = int(time.time())
    return [
        Attack("no token at all", "forged", None),
        Attack("a token that is not a JWT", "forged", "not-a-jwt"),
        Attack(
            "alg: none, no signature",
            "forged",
            unsigned({"alg": "none", "typ": "JWT", "kid": kid}, good) + ".",
        ),
        Attack(
            "HS256, signed with the public key as the HMAC secret",
            "forged",
            f"{confused}.{b64(hmac.new(pem, confused.encode(), hashlib.sha256).digest())}",
        ),
        Attack(
            "a read-only token whose payload was changed to add orders:write",
            "forged",
            f"{read_header}.{b64(json.dumps(widened).encode())}.{read_signature}",
        ),
        Attack(
            "signed by the attacker's own key, with the real kid",
            "forged",
            jwt.encode(good, attacker, algorithm="RS256", headers={"kid": kid}),
        ),
        Attack(
            "signed by the attacker's own key, with a kid nobody published",
            "forged",
            jwt.encode(good, attacker, algorithm="RS256", headers={"kid": "key-attacker"}),
        ),
        Attack(
            "expired 2 minutes ago", "claims", keys.sign(dict(good, exp=now - 120, iat=now - 420))
        ),
        Attack(
            "not valid for another 2 minutes",
            "claims",
            keys.sign(dict(good, nbf=now + 120, iat=now + 120, exp=now + 420)),
        ),
        Attack(
            "issued for payments (audience), not for orders",
            "claims",
            keys.sign(dict(good, aud="payments")),
        ),
        Attack(
            "issued by another issuer", "claims", keys.sign(dict(good, iss="https://evil.test"))
        ),
        Attack(
            "with no expiry at all (valid forever once stolen)",
            "claims",
            keys.sign({k: v for k, v in good.items() if k != "exp"}),
        ),
        Attack("a valid read-only token placing an order", "scope", read_only, must=403),
        Attack("a valid read-only token reading an order", "scope", read_only, "GET", must=200),
    ]


# -- what the clients did --------------------------------------------------------------------
Mint = Callable[[], str]  # gives the token a user shows with one request


def held(token: str) -> Mint:
    return lambda: token


@dataclass
class Wallet:
    """The tokens the users hold now: the scenario adds new ones as the keys rotate."""

    tokens: list[tuple[str, Mint]] = field(default_factory=list)  # (label, token)


def status_of(op: Operation) -> int | None:
    return op.result.get("status") if isinstance(op.result, dict) else None


def shop(url: str, wallet: Wallet, numbers: Iterator[int]) -> Callable[[Client], None]:
    """The users: place an order, read it back, with one of the tokens they hold."""

    def workload(client: Client) -> None:
        label, mint = client.rng.choice(wallet.tokens)
        token = mint()
        if (label, mint) not in wallet.tokens:  # it left the users' hands while it was minted
            return
        order = f"o-{next(numbers)}"
        headers = {"authorization": f"Bearer {token}"}
        body = {"order": order, "amount": client.rng.randint(1, 90)}
        with client.op("order", {"order": order, "token": label}) as op:
            answer = client.http.post(f"{url}/orders", json=body, headers=headers)
            if answer.status_code == 201:
                op.ok({"status": 201})
            else:
                op.fail(
                    f"HTTP {answer.status_code}: {answer.text[:120]}",
                    {"status": answer.status_code},
                )
                return
        with client.op("read", {"order": order, "token": label}) as op:
            answer = client.http.get(f"{url}/orders/{order}", headers=headers)
            if answer.status_code == 200:
                op.ok({"status": 200})
            else:
                op.fail(
                    f"HTTP {answer.status_code}: {answer.text[:120]}",
                    {"status": answer.status_code},
                )
        client.sleep(PAUSE)

    return workload


def attacking(
    url: str, queue: list[Attack], numbers: Iterator[int], placed: str
) -> Callable[[Client], None]:
    """The attacker: one request per attack, each with an order id of its own (a read reads
    `placed`, an order a user placed)."""

    def workload(client: Client) -> None:
        attack = queue.pop(0)
        order = f"attack-{next(numbers)}"
        headers = {"authorization": f"Bearer {attack.token}"} if attack.token else {}
        value = {"order": order, "attack": attack.name, "check": attack.check, "must": attack.must}
        with client.op("attack", value) as op:
            if attack.method == "GET":
                answer = client.http.get(f"{url}/orders/{placed}", headers=headers)
            else:
                body = {"order": order, "amount": 1000}
                answer = client.http.post(f"{url}/orders", json=body, headers=headers)
            op.ok({"status": answer.status_code, "body": answer.text[:160]})

    return workload


def flooding(
    url: str, attacker: rsa.RSAPrivateKey, numbers: Iterator[int]
) -> Callable[[Client], None]:
    """Attackers sending well-formed tokens whose kids nobody ever published."""

    def workload(client: Client) -> None:
        order = f"flood-{next(numbers)}"
        kid = f"key-{client.rng.getrandbits(32):08x}"
        token = jwt.encode(
            user_claims("orders:write"), attacker, algorithm="RS256", headers={"kid": kid}
        )
        headers = {"authorization": f"Bearer {token}"}
        with client.op("flood", {"order": order, "kid": kid}) as op:
            answer = client.http.post(
                f"{url}/orders", json={"order": order, "amount": 1000}, headers=headers
            )
            op.ok({"status": answer.status_code})

    return workload


# -- what the harness-owned services recorded -------------------------------------------------
@dataclass(frozen=True)
class Received:
    """One request a harness-owned service received: when, and how it was answered."""

    path: str
    at: float  # wall-clock seconds
    answered: float | None
    status: int | None
    headers: dict[str, str]
    body: Any

    @property
    def order(self) -> str | None:
        return str(self.body.get("order")) if isinstance(self.body, dict) else None


def received(lab: LabEnvironment, service: str) -> list[Received]:
    found = []
    for r in HttpControl(lab, service).received():
        if r.get("path") == "/health":
            continue
        headers = r.get("headers")
        answered, status = r.get("answered"), r.get("status")
        found.append(
            Received(
                str(r.get("path")),
                float(r.get("time") or 0.0),  # type: ignore[arg-type]
                float(answered) if isinstance(answered, int | float) else None,
                int(status) if isinstance(status, int) else None,
                {str(k).lower(): str(v) for k, v in headers.items()}
                if isinstance(headers, dict)
                else {},
                r.get("body"),
            )
        )
    return found


def orders_jwks_fetches(lab: LabEnvironment) -> list[Received]:
    """The JWKS fetches the key service served to orders (payments says who it is)."""
    return [
        r
        for r in received(lab, "keys")
        if r.path == JWKS and r.headers.get("x-client") != "payments"
    ]


def keys_quiet_for(lab: LabEnvironment, quiet: float) -> bool:
    """Whether orders has not fetched the JWKS for `quiet` seconds."""
    last = max((f.at for f in orders_jwks_fetches(lab)), default=0.0)
    return time.time() - last >= quiet


def with_token(history: History, label: str) -> list[Operation]:
    """The users' requests that ended, made with a token of this label."""
    return [
        op
        for op in history.where(f="order") + history.where(f="read")
        if op.value["token"] == label and op.status != "invoke"
    ]


# -- the scenario ----------------------------------------------------------------------------
@dataclass
class Scenario:
    history: History
    faults: Faults
    rotated: float  # monotonic
    new_kid: str
    charges: list[Received]
    fetches: list[Received]
    token_requests: list[Received]
    began: float  # wall-clock
    ended: float

    def ops(self, f: str) -> list[Operation]:
        return self.history.where(f=f)

    def charged(self, order: str) -> list[Received]:
        return [c for c in self.charges if c.order == order and c.status == 201]

    def refused_for_token(self) -> list[Received]:
        """The charges payments refused for orders' own token (expired, or none): check 8's."""
        return [c for c in self.charges if c.status == 401]


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    lab = lab_module
    faults = Faults(lab)
    keys = KeyService(lab)
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = lab.url("orders")
    began = time.time()
    bad = attacks(keys, attacker)

    def skewed() -> str:
        """Minted as it is used: its iat is SKEW s ahead of the clock however slow the machine
        (a token minted once would stop being ahead of it after SKEW s)."""
        ahead = math.ceil(time.time()) + SKEW
        return keys.sign(user_claims("orders:read orders:write", iat=ahead, nbf=ahead))

    wallet = Wallet(
        [("key 1", held(keys.sign(user_claims("orders:read orders:write")))), (SKEWED, skewed)]
    )
    traffic = Traffic(chaoslab_seed)
    numbers = itertools.count(1)
    with traffic.start(shop(url, wallet, numbers), clients=CLIENTS, timeout=CLIENT_TIMEOUT) as run:
        time.sleep(CALM)
        wait_until(lambda: keys_quiet_for(lab, QUIET_BEFORE_ROTATION), timeout=2.0, every=0.1)
        # The clock-skewed token is check 1's matter: it stays out of the later phases (a fix
        # without leeway would fail them all), so that they judge what they are for. It leaves
        # the users' hands before the keys rotate: one minted after would be signed by key 2.
        wallet.tokens = [t for t in wallet.tokens if t[0] != SKEWED]
        new_kid = keys.rotate()
        rotated = time.monotonic()
        fresh = [keys.sign(user_claims("orders:read orders:write")) for _ in range(3)]
        wallet.tokens = [*wallet.tokens, *(("key 2", held(token)) for token in fresh)]
        hold(
            rotated,
            at_least=AFTER_ROTATION,
            until=lambda: len(with_token(traffic.history, "key 2")) >= MIN_JUDGED,
            at_most=AFTER_ROTATION + 3.0,
        )
        placed = [op.value["order"] for op in traffic.history.where(f="order", status="ok")]
        traffic.run(
            attacking(url, list(bad), numbers, placed[0] if placed else "o-1"),
            clients=1,
            iterations=len(bad),
            timeout=CLIENT_TIMEOUT,
        )
        with faults.latency("orders -> keys", SLOW_MS):
            slow = time.monotonic()
            wait_until(lambda: keys_quiet_for(lab, STRAY_AFTER_QUIET), timeout=3.0, every=0.05)
            traffic.run(  # returns once the stray token is answered
                flooding(url, attacker, numbers),
                clients=1,
                iterations=1,
                timeout=CLIENT_TIMEOUT,
            )
            time.sleep(max(0.0, slow + SLOW - time.monotonic()))
        with faults.down("orders -> keys"):
            time.sleep(DOWN)
        traffic.run(
            flooding(url, attacker, numbers),
            clients=FLOOD_CLIENTS,
            iterations=FLOOD_EACH,
            timeout=CLIENT_TIMEOUT,
        )
        history = run.stop()
    ended = time.time()
    return Scenario(
        history,
        faults,
        rotated,
        new_kid,
        [r for r in received(lab, "payments") if r.path == "/charges"],
        orders_jwks_fetches(lab),
        [r for r in received(lab, "auth") if r.path == "/oauth/token"],
        began,
        ended,
    )


# -- helpers for the checks ------------------------------------------------------------------
def refused_attacks(scenario: Scenario, check: str) -> tuple[list[Operation], list[str]]:
    """The attacks a check judges, and what went wrong with each."""
    judged = [op for op in scenario.ops("attack") if op.value["check"] == check]
    errors = []
    for op in judged:
        name, must, got = op.value["attack"], op.value["must"], status_of(op)
        charged = scenario.charged(op.value["order"])
        if got is None:
            errors.append(f"{name}: no answer ({op.error})")
        elif got != must:
            said = f", answering {op.result.get('body')!r}" if got < 300 else ""
            errors.append(f"{name}: answered {got}, not {must}{said}")
        if charged:
            errors.append(
                f"{name}: payments charged its order {op.value['order']} "
                f"({len(charged)} charges): orders acted on a token it should have refused"
            )
    return judged, errors


def served(ops: list[Operation]) -> list[str]:
    """What went wrong with users' requests that had to succeed."""
    return [
        f"{op.f} {op.value['order']} with a token signed by {op.value['token']}: "
        f"{op.error or 'no answer'}"
        for op in ops
        if op.status != "ok"
    ]


def sliding_peak(times: list[float], window: float) -> tuple[int, float]:
    """The most events in any `window` seconds, and when that window began."""
    times = sorted(times)
    best, at, lo = 0, 0.0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        if hi - lo + 1 > best:
            best, at = hi - lo + 1, times[lo]
    return best, at


# -- the checks ------------------------------------------------------------------------------
def test_1_valid_tokens_are_served(scenario: Scenario) -> None:
    before = [
        op for op in scenario.ops("order") + scenario.ops("read") if op.start < scenario.rotated
    ]
    errors = served(before)
    placed = [op for op in scenario.ops("order") if op.status == "ok"]
    for op in placed:
        charges = scenario.charged(op.value["order"])
        if len(charges) != 1:
            errors.append(
                f"order {op.value['order']} was answered 201, and payments charged it "
                f"{len(charges)} times"
            )
    if len(before) < MIN_JUDGED:
        errors.append(f"only {len(before)} requests before the keys rotated (report this)")
    result = CheckResult(
        "valid tokens are served",
        "every order placed and read with a valid token is answered 201 and 200 (tokens from "
        f"an auth server whose clock runs {SKEW} s ahead too), and each order placed is charged "
        "once at payments",
        f"{sum(op.status == 'ok' for op in before)} of {len(before)} requests before the keys "
        f"rotated were served; payments made {len(scenario.charges)} charges",
        errors,
    )
    expect(result.judging(before), during=scenario.faults.timeline)


def test_2_forged_tokens_are_refused(scenario: Scenario) -> None:
    judged, errors = refused_attacks(scenario, "forged")
    result = CheckResult(
        "forged tokens are refused",
        "401 and no charge for a request with no token, a token that is not a JWT, alg none, "
        "HS256 signed with the public key, a changed payload, the attacker's own key with the "
        "real kid or with an unknown kid",
        f"{len(judged) - len(errors)} of {len(judged)} forged tokens were refused",
        errors,
    )
    expect(result.judging(judged), during=scenario.faults.timeline)


def test_3_claims_are_checked(scenario: Scenario) -> None:
    judged, errors = refused_attacks(scenario, "claims")
    result = CheckResult(
        "every claim is checked",
        "401 and no charge for a well-signed token that expired 2 minutes ago, that is valid "
        "only in 2 minutes, that was issued for payments, by another issuer, or that has no "
        "expiry",
        f"{len(judged) - len(errors)} of {len(judged)} well-signed but invalid tokens were refused",
        errors,
    )
    expect(result.judging(judged), during=scenario.faults.timeline)


def test_4_scopes_are_enforced(scenario: Scenario) -> None:
    judged, errors = refused_attacks(scenario, "scope")
    result = CheckResult(
        "scopes are enforced",
        "a valid token with scope orders:read only is answered 403 (not 401: the caller is "
        "known, the action is not allowed) on POST /orders and charges nothing, and 200 on GET",
        f"{len(judged) - len(errors)} of {len(judged)} requests with a read-only token were "
        "answered as they must",
        errors,
    )
    expect(result.judging(judged), during=scenario.faults.timeline)


def test_5_keys_rotate_without_a_restart(scenario: Scenario) -> None:
    outage = min((e.start for e in scenario.faults.timeline.events), default=float("inf"))
    after = [
        op
        for op in scenario.ops("order") + scenario.ops("read")
        if op.start >= scenario.rotated
        and (op.end or outage) < outage
        # The clock-skewed token (check 1's matter) leaves the users' hands as the keys rotate;
        # a request that picked it just before may still be under way.
        and op.value["token"] != SKEWED
    ]
    # A charge payments refused for orders' own token is check 8's matter (orders took the
    # user's token, then failed to pay): as payments recorded it, not as orders tells it.
    own_token = {c.order for c in scenario.refused_for_token()}
    after = [op for op in after if op.status == "ok" or op.value["order"] not in own_token]
    new = [op for op in after if op.value["token"] == "key 2"]
    errors = served(after)
    if len(new) < MIN_JUDGED:
        errors.append(f"only {len(new)} requests used the new key (report this)")
    result = CheckResult(
        "keys rotate without a restart",
        f"after the key service rotated to {scenario.new_kid}, tokens it signs are served, and "
        "tokens of the old key too (it is still published)",
        f"{sum(op.status == 'ok' for op in new)} of {len(new)} requests with the new key and "
        f"{sum(op.status == 'ok' for op in after) - sum(op.status == 'ok' for op in new)} of "
        f"{len(after) - len(new)} with the old one were served",
        errors,
    )
    expect(result.judging(after), during=scenario.faults.timeline)


def test_6_unknown_kids_do_not_hammer_the_key_service(scenario: Scenario) -> None:
    flood = scenario.ops("flood")
    errors = []
    for op in flood:
        if status_of(op) != 401:
            errors.append(
                f"a token with kid {op.value['kid']} nobody published: answered "
                f"{status_of(op) or op.error}, not 401"
            )
        if scenario.charged(op.value["order"]):
            errors.append(f"payments charged {op.value['order']}, a forged order")
    peak, at = sliding_peak([f.at for f in scenario.fetches], REFETCH_WINDOW)
    if peak > MAX_IN_WINDOW:
        errors.append(
            f"orders fetched the JWKS {peak} times within {REFETCH_WINDOW:.0f} s (from "
            f"{at - scenario.began:.1f} s into the run): at most {MAX_IN_WINDOW} are allowed, "
            "whatever kids the callers send"
        )
    result = CheckResult(
        "unknown kids do not hammer the key service",
        f"{len(flood)} tokens with kids nobody published are answered 401, and orders fetches "
        f"the JWKS at most {MAX_IN_WINDOW} times in any {REFETCH_WINDOW:.0f} s of the run",
        f"orders fetched the JWKS {len(scenario.fetches)} times in all, at most {peak} times "
        f"within {REFETCH_WINDOW:.0f} s",
        errors,
    )
    expect(result.judging(flood), during=scenario.faults.timeline)


def test_7_known_keys_work_while_the_key_service_is_out(scenario: Scenario) -> None:
    events = [e for e in scenario.faults.timeline.events if "keys" in e.description]
    users = scenario.ops("order") + scenario.ops("read")
    began = min(e.start for e in events)
    # A key orders had seen: one of a token it served before the key service went out (a
    # key it never learned is check 5's matter).
    seen = {op.value["token"] for op in users if op.status == "ok" and (op.end or began) < began}
    during = [
        op
        for op in users
        if any(e.overlaps(op.start, op.end or op.start) for e in events)
        and op.value["token"] in seen
    ]
    errors = served(during)
    for op in during:
        if op.status == "ok" and op.latency is not None and op.latency > LATENCY_BOUND:
            errors.append(
                f"{op.f} {op.value['order']} took {op.latency:.2f} s (at most "
                f"{LATENCY_BOUND:.1f} s): it waited for the key service"
            )
    if len(during) < MIN_JUDGED:
        errors.append(f"only {len(during)} requests ran while the key service was out")
    result = CheckResult(
        "known keys work while the key service is slow or down",
        f"while orders -> keys held answers {SLOW_MS} ms, then refused connections, every "
        f"request with a token of a key orders had seen is served, each in {LATENCY_BOUND:.1f} "
        "s at most",
        f"{sum(op.status == 'ok' for op in during)} of {len(during)} requests were served, the "
        f"slowest in {max((op.latency or 0.0 for op in during), default=0.0):.2f} s",
        errors,
    )
    expect(result.judging(during), during=events)


def test_8_one_service_token_at_a_time(scenario: Scenario) -> None:
    asks = sorted(scenario.token_requests, key=lambda r: r.at)
    span = scenario.ended - scenario.began
    allowed = int(span * TOKEN_RATE) + TOKEN_SLACK
    errors = []
    if len(asks) > allowed:
        errors.append(
            f"orders asked auth for {len(asks)} tokens in {span:.1f} s (tokens live 3 s; at "
            f"most {allowed} asks are allowed): it does not keep its token"
        )
    overlapping = 0
    for first, second in itertools.pairwise(asks):
        if first.answered is None or second.at < first.answered:
            overlapping += 1
    if overlapping:
        errors.append(
            f"{overlapping} times orders asked auth for a token while another ask was still in "
            "flight: one ask at a time replaces the token for every caller"
        )
    refused = scenario.refused_for_token()
    if refused:
        errors.append(
            f"payments refused {len(refused)} charges for their token (expired, or none): "
            "replace the token shortly before it expires"
        )
    placed = [op for op in scenario.ops("order") if op.status == "ok"]
    if not placed:
        errors.append("no order was placed, so no service token was judged")
    result = CheckResult(
        "one service token at a time",
        f"orders asks auth for a token at most {TOKEN_RATE:.0f} time per second on average "
        f"(+{TOKEN_SLACK}), never twice at once, and payments never gets an expired one",
        f"{len(asks)} token requests in {span:.1f} s for {len(placed)} orders placed; "
        f"{len(refused)} charges refused by payments",
        errors,
    )
    expect(result.judging(scenario.ops("order")), during=scenario.faults.timeline)
