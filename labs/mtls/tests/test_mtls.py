"""The checks of mtls: card payments cross three links while the harness listens on every wire,
attacks checkout and payments with the certificates an attacker could have, puts an impostor
where payments should be, and renews every certificate under traffic.

One scenario runs once for the module. Four clients of the web tier (the harness, holding the
run CA's certificate for "web") place orders at checkout, each on a new connection, with a
card number of its own; checkout has payments charge it, and payments books it in the ledger
(the lab's, recording who called it and with which certificate). A wire tap between each
proxy and its service keeps every byte that crosses. Mid-traffic the harness gives checkout
and payments new certificates. Then it sends its attacks, each with an order id of its own,
and then points checkout's link to payments at the impostor for two orders, and two more with
the impostor holding a certificate for "payments" from a CA nobody trusts.
"""

import http.client
import itertools
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from harness import CheckResult, Client, History, LabEnvironment, Operation, Traffic, expect
from harness.pki import CertificateAuthority, RunPKI

CLIENTS = 4
PAUSE = 0.01  # seconds a client waits between two orders
CALM = 0.6  # seconds of traffic before the rotation
AFTER_ROTATION = 2.3  # seconds of traffic after it
PICKUP = 1.3  # seconds a service may take to present its new certificate
MIN_JUDGED = 4
CALL_TIMEOUT = 5.0
TRAFFIC_TIMEOUT = 10.0
IMPOSTOR_ORDERS = 2  # orders sent to each of the impostor's two faces


# -- talking to a service ----------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """What a caller got: an HTTP status (None: no HTTP answer at all), and the certificate the
    server presented over TLS (its serial, None over plain HTTP)."""

    status: int | None
    body: str = ""
    error: str | None = None
    server_serial: int | None = None


def call(
    address: str, path: str, body: dict[str, Any], *, tls: ssl.SSLContext | None, name: str
) -> Reply:
    """One POST on a connection of its own (so every call shows the certificates of the
    moment), verifying the server's certificate against `name` when over TLS."""
    host, _, port = address.rpartition(":")
    serial = None
    try:
        sock = socket.create_connection((host, int(port)), timeout=CALL_TIMEOUT)
    except OSError as exc:
        return Reply(None, error=f"could not connect: {exc}")
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=name)
            der = sock.getpeercert(binary_form=True)
            serial = x509.load_der_x509_certificate(der).serial_number if der else None
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + data)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return Reply(answer.status, answer.read().decode(errors="replace")[:200], None, serial)
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, error=f"{type(exc).__name__}: {exc}", server_serial=serial)
    finally:
        sock.close()


def client_context(
    pki: RunPKI, identity: Path | None, trust: bytes | None = None
) -> ssl.SSLContext:
    """A caller's TLS settings: trusts the run's CA (or `trust`), presents `identity`."""
    context = ssl.create_default_context(cadata=(trust or pki.ca.cert_pem).decode())
    if identity is not None:
        context.load_cert_chain(identity)
    return context


def address_of(lab: LabEnvironment, service: str) -> str:
    return lab.url(service).removeprefix("http://")


def card_number(client: Client) -> str:
    return "4" + "".join(str(client.rng.randrange(10)) for _ in range(15))


# -- the web tier ----------------------------------------------------------------------------
def web_tier(
    address: str, tls: ssl.SSLContext | None, numbers: Iterator[int], cards: list[str]
) -> Callable[[Client], None]:
    """Clients of checkout: an order each time, with a card number nobody used before."""

    def workload(client: Client) -> None:
        order, card = f"o-{next(numbers)}", card_number(client)
        cards.append(card)
        body = {"order": order, "card": card, "amount": client.rng.randint(1, 90)}
        with client.op("order", {"order": order}) as op:
            reply = call(address, "/checkout", body, tls=tls, name="checkout")
            result = {"status": reply.status, "serial": reply.server_serial}
            if reply.status == 201:
                op.ok(result)
            else:
                op.fail(reply.error or f"HTTP {reply.status}: {reply.body[:120]}", result)
        client.sleep(PAUSE)

    return workload


def presented_serial(address: str, tls: ssl.SSLContext, name: str) -> int | str:
    """The serial of the certificate the service presents in a TLS handshake, or why it
    presented none."""
    host, _, port = address.rpartition(":")
    try:
        with (
            socket.create_connection((host, int(port)), timeout=CALL_TIMEOUT) as sock,
            tls.wrap_socket(sock, server_hostname=name) as connection,
        ):
            der = connection.getpeercert(binary_form=True)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if der is None:
        return "no certificate"
    return x509.load_der_x509_certificate(der).serial_number


def speaks_tls(address: str, tls: ssl.SSLContext, name: str) -> str | None:
    """None when a TLS handshake with the service succeeds, else why not."""
    shown = presented_serial(address, tls, name)
    return shown if isinstance(shown, str) else None


# -- the attacks -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Attack:
    """One request an attacker sends straight to a service. `tls` None: plain HTTP."""

    name: str
    check: str  # "proof" (check 3), "allowed" (check 4), or "control" (both)
    target: str
    tls: ssl.SSLContext | None
    control: bool = False  # a legitimate caller: must be served


def attacks(pki: RunPKI) -> list[Attack]:
    outsider = CertificateAuthority("attacker's CA")
    past = datetime.now(UTC) - timedelta(hours=2)
    ended = past + timedelta(hours=1)

    def holding(label: str, identity: Any) -> ssl.SSLContext:
        return client_context(pki, pki.file_for(label, identity))

    found: list[Attack] = []
    for target, caller in (("checkout", "web"), ("payments", "checkout")):
        found += [
            Attack(f"{caller}, with its certificate", "control", target,
                   holding(f"{target}-control", pki.ca.issue(caller)), control=True),
            Attack("plain HTTP, no TLS at all", "proof", target, None),
            Attack("TLS without a client certificate", "proof", target, client_context(pki, None)),
            Attack(f"a certificate for '{caller}' from another CA", "proof", target,
                   holding(f"{target}-outsider", outsider.issue(caller))),
            Attack(f"an expired certificate for '{caller}' from the run's CA", "proof", target,
                   holding(f"{target}-expired",
                           pki.ca.issue(caller, valid_from=past, valid_until=ended))),
            Attack("a valid certificate for 'reports', a service not allowed", "allowed", target,
                   holding(f"{target}-reports", pki.ca.issue("reports"))),
            Attack(f"a certificate whose common name is '{caller}' but whose SAN is 'reports'",
                   "allowed", target,
                   holding(f"{target}-cn", pki.ca.issue("reports", common_name=caller))),
            Attack(f"a certificate of the run's CA with no SAN, whose common name is '{caller}'",
                   "allowed", target,
                   holding(f"{target}-legacy", pki.ca.issue(caller, with_san=False))),
        ]  # fmt: skip
    found.append(
        Attack(
            "a valid certificate for 'web', which may call checkout but not payments",
            "allowed",
            "payments",
            holding("payments-web", pki.ca.issue("web")),
        )
    )
    found.append(
        Attack(
            "a valid certificate for 'check', a part of the allowed name 'checkout'",
            "allowed",
            "payments",
            holding("payments-check", pki.ca.issue("check")),
        )
    )
    return found


def attacking(
    lab: LabEnvironment, queue: list[Attack], numbers: Iterator[int]
) -> Callable[[Client], None]:
    paths = {"checkout": "/checkout", "payments": "/charges"}

    def workload(client: Client) -> None:
        attack = queue.pop(0)
        order = f"attack-{next(numbers)}"
        body = {"order": order, "card": card_number(client), "amount": 1000}
        value = {"order": order, "attack": attack.name, "check": attack.check,
                 "target": attack.target, "control": attack.control}  # fmt: skip
        with client.op("attack", value) as op:
            reply = call(
                address_of(lab, attack.target), paths[attack.target], body,
                tls=attack.tls, name=attack.target,
            )  # fmt: skip
            op.ok({"status": reply.status, "body": reply.body, "error": reply.error})

    return workload


# -- what the lab's services recorded ----------------------------------------------------------
def calls(lab: LabEnvironment, service: str) -> list[dict[str, Any]]:
    log = lab.state_dir(service) / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@dataclass
class Scenario:
    history: History
    tls_mode: str | None  # None: the web tier spoke TLS to checkout; else why it could not
    wire: dict[str, list[tuple[bytes, bytes]]]  # what the taps held when the traffic stopped
    cards: list[str]
    rotated: float  # monotonic
    rotated_at: float  # wall clock
    new_serial: dict[str, int]
    old_serial: dict[str, int]
    ledger: list[dict[str, Any]]
    impostor: list[dict[str, Any]]
    impostor_orders: list[Reply] = field(default_factory=list)
    # checkout renewed again with no traffic: (the new serial, what a handshake PICKUP s later
    # was shown: a serial, or why there was none); None without TLS
    quiet_renewal: tuple[int, int | str] | None = None

    def ops(self, f: str) -> list[Operation]:
        return self.history.where(f=f)

    def booked(self, order: str) -> list[dict[str, Any]]:
        return [c for c in self.ledger if isinstance(c["body"], dict)
                and c["body"].get("order") == order and c["status"] == 201]  # fmt: skip


@pytest.fixture(scope="module")
def scenario(lab_module: LabEnvironment, chaoslab_seed: int) -> Scenario:
    lab = lab_module
    pki = lab.pki
    assert pki is not None
    web = client_context(pki, pki.file_for("web", pki.ca.issue("web")))
    checkout = address_of(lab, "checkout")
    refused = speaks_tls(checkout, web, "checkout")
    numbers = itertools.count(1)
    cards: list[str] = []
    old = {name: pki.current[name].serial for name in ("checkout", "payments")}
    traffic = Traffic(chaoslab_seed)
    workload = web_tier(checkout, web if refused is None else None, numbers, cards)
    with traffic.start(workload, clients=CLIENTS, timeout=TRAFFIC_TIMEOUT) as run:
        time.sleep(CALM)
        rotated, rotated_at = time.monotonic(), time.time()
        new = {name: pki.rotate(name).serial for name in ("checkout", "payments")}
        time.sleep(AFTER_ROTATION)
        run.stop()
    quiet_renewal = None
    if refused is None:  # a renewal while checkout calls no one: no request of its own loads it
        renewed = pki.rotate("checkout").serial
        time.sleep(PICKUP)
        # Two handshakes: a service that loads the file when a handshake begins serves that one
        # with the certificate the connection was accepted with, and the next with the new one.
        presented_serial(checkout, web, "checkout")
        quiet_renewal = (renewed, presented_serial(checkout, web, "checkout"))
    wire = {str(link): lab.tapped(link) for link in lab.lab.tapped}
    bad = attacks(pki)
    traffic.run(attacking(lab, list(bad), numbers), clients=1, iterations=len(bad), timeout=30)
    impostor_orders = []
    link = lab.lab.link("checkout", "payments")
    outsider = CertificateAuthority("nobody's CA")
    for face in ("run CA, for 'impostor'", "another CA, for 'payments'"):
        if face.startswith("another"):
            pki.replace("impostor", outsider.issue("payments"))
        with lab.redirected(link, "impostor"):
            for _ in range(IMPOSTOR_ORDERS):
                body = {"order": f"impostor-{next(numbers)}", "card": "4000" + "1" * 12,
                        "amount": 5}  # fmt: skip
                tls = web if refused is None else None
                impostor_orders.append(call(checkout, "/checkout", body, tls=tls, name="checkout"))
    return Scenario(
        traffic.history,
        refused,
        wire,
        cards,
        rotated,
        rotated_at,
        new,
        old,
        calls(lab, "ledger"),
        calls(lab, "impostor"),
        impostor_orders,
        quiet_renewal,
    )


# -- helpers for the checks ------------------------------------------------------------------
def no_tls_note(scenario: Scenario) -> list[str]:
    if scenario.tls_mode is None:
        return []
    return [
        "the web tier could not open TLS to checkout, and spoke plain HTTP to it "
        f"({scenario.tls_mode})"
    ]


def judged_attacks(scenario: Scenario, check: str) -> tuple[list[Operation], list[str]]:
    """The attacks a check judges (and its controls), and what went wrong with each."""
    judged = [op for op in scenario.ops("attack") if op.value["check"] in (check, "control")]
    errors = []
    for op in judged:
        name, target = op.value["attack"], op.value["target"]
        status = op.result.get("status") if isinstance(op.result, dict) else None
        booked = scenario.booked(op.value["order"])
        if op.value["control"]:
            if status != 201 or len(booked) != 1:
                got = f"HTTP {status}" if status is not None else (op.result or {}).get("error")
                errors.append(
                    f"{target} did not serve {name} ({got}; {len(booked)} ledger entries): "
                    "it must serve its callers over mutual TLS"
                )
            continue
        if status is not None and not 400 <= status < 500:
            errors.append(f"{target} answered {name}: HTTP {status} {op.result.get('body')!r}")
        if booked:
            errors.append(
                f"{target} acted on {name}: the ledger booked its order {op.value['order']}"
            )
    return judged, errors


def after_pickup(scenario: Scenario) -> list[Operation]:
    return [op for op in scenario.ops("order") if op.start > scenario.rotated + PICKUP]


def hex_serial(serial: int | None) -> str:
    return f"{serial:x}"[:12] if serial is not None else "none"


# -- the checks ------------------------------------------------------------------------------
def test_1_orders_are_charged(scenario: Scenario) -> None:
    orders = scenario.ops("order")
    errors = [
        f"order {op.value['order']}: {op.error or 'no answer'}"
        for op in orders
        if op.status != "ok"
    ]
    for op in orders:
        if op.status == "ok" and len(scenario.booked(op.value["order"])) != 1:
            errors.append(
                f"order {op.value['order']} was answered 201 and booked "
                f"{len(scenario.booked(op.value['order']))} times in the ledger"
            )
    if len(orders) < MIN_JUDGED:
        errors.append(f"only {len(orders)} orders were placed (report this)")
    result = CheckResult(
        "orders are charged",
        "every order the web tier places at checkout is answered 201, and the ledger books it "
        "once (certificates renewed mid-run included)",
        f"{sum(op.status == 'ok' for op in orders)} of {len(orders)} orders were served; the "
        f"ledger booked {sum(c['status'] == 201 for c in scenario.ledger)} entries",
        errors,
    )
    expect(result.judging(orders))


def test_2_nothing_readable_crosses_a_link(scenario: Scenario) -> None:
    errors = no_tls_note(scenario)
    crossed = 0
    for name, connections in sorted(scenario.wire.items()):
        link = name.replace("checks ->", "web tier ->")
        plain = [up for up, _ in connections if up and not up.startswith(b"\x16")]
        readable = sorted(
            {card for card in scenario.cards for up, down in connections
             if card.encode() in up or card.encode() in down}
        )  # fmt: skip
        crossed += len(connections)
        if plain:
            errors.append(
                f"{link}: {len(plain)} of {len(connections)} connections are plain text, "
                f"for example {plain[0][:60]!r}"
            )
        if readable:
            errors.append(
                f"{link}: {len(readable)} card numbers crossed readable, "
                f"such as {readable[0][:4]}...{readable[0][-4:]}"
            )
    if crossed == 0:
        errors.append("the taps saw no connection at all (report this)")
    result = CheckResult(
        "nothing readable crosses a link",
        "every connection on every link (web -> checkout, checkout -> payments, payments -> "
        "ledger) is TLS from its first byte, and no card number a client sent can be read on "
        "the wire",
        f"the taps saw {crossed} connections and {len(scenario.cards)} card numbers were sent",
        errors,
    )
    expect(result)


def test_3_callers_must_prove_who_they_are(scenario: Scenario) -> None:
    judged, errors = judged_attacks(scenario, "proof")
    result = CheckResult(
        "callers must prove who they are",
        "checkout and payments serve their callers over mutual TLS and refuse, with no ledger "
        "entry, a caller over plain HTTP, without a certificate, with a certificate from "
        "another CA, or with an expired one",
        f"{len(judged)} requests: {len(errors)} went wrong",
        errors,
    )
    expect(result.judging(judged))


def test_4_only_allowed_callers_get_in(scenario: Scenario) -> None:
    judged, errors = judged_attacks(scenario, "allowed")
    result = CheckResult(
        "only allowed callers get in",
        "a caller with a valid certificate of the run's CA whose SAN is not on the service's "
        "allow-list gets a 4xx (or no TLS session) and no ledger entry: 'reports' at checkout "
        "and payments, 'web' at payments, 'check' (a part of 'checkout') at payments, a "
        "certificate whose common name is an allowed caller's but whose SAN is not, and one "
        "whose common name is an allowed caller's and that has no SAN",
        f"{len(judged)} attacks: {len(errors)} went wrong",
        errors,
    )
    expect(result.judging(judged))


def test_5_clients_check_whom_they_talk_to(scenario: Scenario) -> None:
    errors = no_tls_note(scenario)
    cards = [c for c in scenario.impostor if isinstance(c["body"], dict) and "card" in c["body"]]
    if scenario.impostor:
        errors.append(
            f"the impostor received {len(scenario.impostor)} requests from checkout "
            f"({len(cards)} with a card number): checkout took it for payments"
        )
        faces = sorted({str(c["peer"]) for c in scenario.impostor})
        if faces != ["None"]:
            errors.append(f"checkout's certificate as the impostor saw it: {', '.join(faces)}")
    served = [r for r in scenario.impostor_orders if r.status == 201]
    if served:
        errors.append(f"{len(served)} orders were answered 201 while the impostor stood in")
    result = CheckResult(
        "clients check whom they talk to",
        "with checkout's link to payments pointed at an impostor, checkout sends it nothing: "
        "not when it holds a certificate of the run's CA for another name ('impostor'), nor "
        "one for 'payments' from a CA nobody trusts",
        f"{len(scenario.impostor_orders)} orders were sent meanwhile; the impostor received "
        f"{len(scenario.impostor)} requests",
        errors,
    )
    expect(result)


def test_6_rotated_certificates_are_picked_up(scenario: Scenario) -> None:
    errors = no_tls_note(scenario)
    around = [op for op in scenario.ops("order") if op.end is None or op.end > scenario.rotated]
    errors += [
        f"order {op.value['order']} around the renewal: {op.error or 'no answer'}"
        for op in around
        if op.status != "ok"
    ]
    if scenario.tls_mode is not None:
        result = CheckResult(
            "rotated certificates are picked up",
            "the harness renews checkout's and payments' certificates mid-traffic: no order "
            f"fails, and within {PICKUP} s both present their new certificate",
            "checkout presents no certificate at all",
            errors,
        )
        expect(result)
    late = [op for op in after_pickup(scenario) if op.status == "ok"]
    stale = [op for op in late if op.result.get("serial") != scenario.new_serial["checkout"]]
    if stale:
        errors.append(
            f"checkout presented its old certificate to {len(stale)} of {len(late)} clients "
            f"more than {PICKUP} s after the renewal (serial "
            f"{hex_serial(stale[0].result.get('serial'))}, the new one is "
            f"{hex_serial(scenario.new_serial['checkout'])})"
        )
    booked = [c for c in scenario.ledger if c["at"] > scenario.rotated_at + PICKUP and c["tls"]]
    old_payments = [c for c in booked if c["peer_serial"] != scenario.new_serial["payments"]]
    if old_payments:
        errors.append(
            f"payments presented its old certificate to the ledger {len(old_payments)} of "
            f"{len(booked)} times more than {PICKUP} s after the renewal"
        )
    if scenario.quiet_renewal is not None:
        renewed, shown = scenario.quiet_renewal
        if shown != renewed:
            seen = f"serial {hex_serial(shown)}" if isinstance(shown, int) else shown
            errors.append(
                f"renewed once more while no order came, checkout presented {seen} to the second"
                f" of two handshakes {PICKUP} s later, not its new certificate (serial"
                f" {hex_serial(renewed)}): it loads a renewed certificate only when it makes a"
                " call itself"
            )
    if len(late) < MIN_JUDGED or len(booked) < MIN_JUDGED:
        errors.append(
            f"only {len(late)} orders served and {len(booked)} TLS ledger entries after the "
            f"renewal's {PICKUP} s: too few to judge"
        )
    result = CheckResult(
        "rotated certificates are picked up",
        "the harness renews checkout's and payments' certificates mid-traffic: no order fails, "
        f"and within {PICKUP} s both present their new certificate (checkout to its clients, "
        "payments to the ledger), without a restart; and so does checkout renewed once more "
        "while no order comes",
        f"{len(around)} orders after the renewal, {len(late)} of them served more than "
        f"{PICKUP} s after it",
        errors,
    )
    expect(result.judging(around))
