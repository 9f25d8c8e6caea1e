"""harness.lab: lab.toml into dataclasses, errors that name the file, the key and the fix."""

from __future__ import annotations

import pytest

from harness._errors import LabDefinitionError, UnknownLabError
from harness.lab import (
    Lab,
    Link,
    Readiness,
    catalogue,
    env_name,
    find_lab,
    labs_root,
    load_lab,
    scan,
)
from harness.metrics.config import MetricsSpec
from harness.postgres import PostgresSpec
from harness.tracing.config import TracingSpec

LAB = """\
[lab]
title = "Charge once, even when the client retries"
chapter = 7
order = 2
learner_files = ["services/payments.py"]
hints = ["Where does the second charge come from?", "Store the key before you charge."]
"""

SERVICES = """\
[services.payments]
command = ["python", "-m", "services.payments"]
ready = { http = "/health" }

[services.ledger-db]
command = ["python", "-m", "services.ledger"]
ready = { port = true, timeout = 5 }
env = { MODE = "strict" }
"""

LINKS = """\
[links]
"checks -> payments" = {}
"payments -> ledger-db" = {}
"""

CHECKS = """\
[checks]
starter_fails = ["test_1_charges_once"]
"""


def manifest(
    lab: str = LAB, services: str = SERVICES, links: str = LINKS, checks: str = CHECKS
) -> str:
    return "\n".join([lab, services, links, checks])


def short_lab(title: str, chapter: int, order: int) -> str:
    return (
        f'[lab]\ntitle = "{title}"\nchapter = {chapter}\norder = {order}\n'
        'learner_files = []\nhints = ["first", "second"]\n\n'
        '[services.api]\ncommand = ["python", "-m", "services.api"]\n'
    )


# -- a valid manifest ----------------------------------------------------------------------
def test_valid_manifest_loads_into_dataclasses(write_lab):
    root = write_lab(manifest())

    lab = load_lab(root)

    assert isinstance(lab, Lab)
    assert lab.slug == "idempotency-keys"
    assert lab.root == root.resolve()
    assert lab.manifest == root.resolve() / "lab.toml"
    assert lab.checks_dir == root.resolve() / "tests"
    assert lab.solution_dir == root.resolve() / "solution"
    assert lab.title == "Charge once, even when the client retries"
    assert (lab.chapter, lab.order) == (7, 2)
    assert lab.learner_files == ("services/payments.py",)
    assert lab.hints == (
        "Where does the second charge come from?",
        "Store the key before you charge.",
    )
    assert lab.starter_fails == ("test_1_charges_once",)
    assert list(lab.services) == ["payments", "ledger-db"]


def test_points_per_check_come_from_the_checks_table(write_lab):
    checks = CHECKS + "points = { test_1_charges_once = 3, test_2_retries = 0 }\n"
    lab = load_lab(write_lab(manifest(checks=checks)))

    assert lab.points == {"test_1_charges_once": 3, "test_2_retries": 0}


def test_prometheus_table_names_what_to_scrape_how_often_and_the_rules(write_lab):
    table = '[prometheus]\nscrape = ["payments"]\ninterval = 0.5\nrules = ["services/alerts.yml"]\n'
    root = write_lab(
        manifest(checks=CHECKS + "\n" + table),
        files=("services/payments.py", "services/alerts.yml"),
    )
    lab = load_lab(root)

    assert lab.metrics == MetricsSpec(0.5, ("services/alerts.yml",), "/metrics", ("payments",))


def test_prometheus_readers_are_services_of_the_lab(write_lab):
    table = '[prometheus]\nscrape = ["payments"]\nreaders = ["payments"]\n'
    lab = load_lab(write_lab(manifest(checks=CHECKS + "\n" + table)))
    assert lab.metrics is not None
    assert lab.metrics.readers == ("payments",)

    unknown = '[prometheus]\nscrape = ["payments"]\nreaders = ["controller"]\n'
    with pytest.raises(LabDefinitionError, match=r"prometheus\.readers.*'controller' is not one"):
        load_lab(write_lab(manifest(checks=CHECKS + "\n" + unknown)))


def test_a_lab_without_a_prometheus_table_needs_none(write_lab):
    assert load_lab(write_lab(manifest())).metrics is None


def test_tracing_table_names_the_services_that_send_spans(write_lab):
    lab = load_lab(write_lab(manifest(checks=CHECKS + '[tracing]\nservices = ["payments"]\n')))

    assert lab.tracing == TracingSpec(("payments",))
    assert load_lab(write_lab(manifest())).tracing is None


def test_postgres_table_names_the_services_that_use_the_database(write_lab):
    lab = load_lab(write_lab(manifest(checks=CHECKS + '[postgres]\nusers = ["payments"]\n')))

    assert lab.postgres == PostgresSpec(("payments",))
    assert load_lab(write_lab(manifest())).postgres is None


def test_secrets_table_names_who_gets_each_runs_secret(write_lab):
    lab = load_lab(write_lab(manifest(checks=CHECKS + '[secrets]\nCLIENT_SECRET = ["payments"]\n')))

    assert lab.secrets == {"CLIENT_SECRET": ("payments",)}
    assert load_lab(write_lab(manifest())).secrets == {}


def test_tls_names_who_gets_a_certificate_and_a_link_may_be_tapped(write_lab):
    links = '[links]\n"checks -> payments" = { tap = true }\n"payments -> ledger-db" = {}\n'
    checks = CHECKS + '[tls]\nidentities = ["payments"]\n'
    lab = load_lab(write_lab(manifest(links=links, checks=checks)))

    assert lab.tls == ("payments",)
    assert lab.tapped == (Link("checks", "payments"),)
    assert lab.link("checks", "payments").tap  # a tap is not part of the link's identity
    assert load_lab(write_lab(manifest())).tls == ()


def test_services_get_command_readiness_and_env(write_lab):
    lab = load_lab(write_lab(manifest()))

    payments, ledger = lab.services["payments"], lab.services["ledger-db"]
    assert payments.name == "payments"
    assert payments.command == ("python", "-m", "services.payments")
    assert payments.ready == Readiness(kind="http", path="/health", timeout=20.0)
    assert payments.env == {}
    assert ledger.ready == Readiness(kind="port", path="", timeout=5.0)
    assert ledger.env == {"MODE": "strict"}
    assert ledger.env_prefix == "LEDGER_DB"


def test_links_are_directed_and_named_for_their_proxy(write_lab):
    lab = load_lab(write_lab(manifest()))

    assert lab.links == (Link("checks", "payments"), Link("payments", "ledger-db"))
    assert lab.links[1].name == "payments__ledger-db"
    assert str(lab.links[1]) == "payments -> ledger-db"
    assert lab.link("payments", "ledger-db") is lab.links[1]
    assert lab.links_from("payments") == (Link("payments", "ledger-db"),)


def test_optional_parts_take_their_defaults(write_lab):
    services = '[services.payments]\ncommand = ["python", "-m", "services.payments"]\n'
    lab = load_lab(
        write_lab(
            manifest(lab=LAB.replace("order = 2\n", ""), services=services, links="", checks="")
        )
    )

    assert lab.order == 0
    assert lab.links == ()
    assert lab.starter_fails == ()
    assert lab.points == {}
    assert lab.services["payments"].ready == Readiness()
    assert Readiness() == Readiness(kind="http", path="/health", timeout=20.0)


@pytest.mark.parametrize(
    ("service", "expected"),
    [("ledger-db", "LEDGER_DB"), ("payments", "PAYMENTS"), ("read-model-2", "READ_MODEL_2")],
)
def test_env_name_is_upper_case_with_underscores(service, expected):
    assert env_name(service) == expected


# -- every validation error names the file, the key and the fix ------------------------------
def _case(id_, text, key, problem, fix):
    return pytest.param(text, key, problem, fix, id=id_)


INVALID = [
    _case("missing-lab-table", manifest(lab=""), "lab", "missing table", "add a [lab] table"),
    _case(
        "lab-is-not-a-table",
        'lab = "payments"\n' + manifest(lab=""),
        "lab",
        "must be a table",
        "write [lab]",
    ),
    _case(
        "missing-title",
        manifest(lab=LAB.replace('title = "Charge once, even when the client retries"\n', "")),
        "lab.title",
        "missing or not a text",
        'set lab.title = "..."',
    ),
    _case(
        "blank-title",
        manifest(lab=LAB.replace('"Charge once, even when the client retries"', '"  "')),
        "lab.title",
        "missing or not a text",
        'set lab.title = "..."',
    ),
    _case(
        "chapter-not-an-int",
        manifest(lab=LAB.replace("chapter = 7", 'chapter = "seven"')),
        "lab.chapter",
        "not a whole number",
        "set lab.chapter = 7",
    ),
    _case(
        "chapter-is-a-bool",
        manifest(lab=LAB.replace("chapter = 7", "chapter = true")),
        "lab.chapter",
        "not a whole number",
        "set lab.chapter = 7",
    ),
    _case(
        "chapter-is-a-float",
        manifest(lab=LAB.replace("chapter = 7", "chapter = 7.5")),
        "lab.chapter",
        "not a whole number",
        "set lab.chapter = 7",
    ),
    _case(
        "one-hint",
        manifest(lab=LAB.replace(', "Store the key before you charge."', "")),
        "lab.hints",
        "at least two hints",
        "add hints, gentlest first",
    ),
    _case(
        "empty-hint",
        manifest(lab=LAB.replace('"Store the key before you charge."', '" "')),
        "lab.hints",
        "not a list of non-empty texts",
        'set lab.hints = ["..."]',
    ),
    _case(
        "learner-file-missing",
        manifest(lab=LAB.replace("services/payments.py", "services/nowhere.py")),
        "lab.learner_files",
        "'services/nowhere.py' does not exist",
        "fix the path",
    ),
    _case(
        "learner-file-outside-services",
        manifest(lab=LAB.replace("services/payments.py", "tests/test_checks.py")),
        "lab.learner_files",
        "'tests/test_checks.py' is not under services/",
        "the learner edits services",
    ),
    _case(
        "unknown-top-level-key",
        'colour = "blue"\n' + manifest(),
        "colour",
        "unknown key",
        "remove it (allowed: checks, lab, links, postgres, prometheus, secrets, services, tls, "
        "tracing)",
    ),
    _case(
        "unknown-key-in-lab",
        manifest(lab=LAB + 'difficulty = "hard"\n'),
        "lab.difficulty",
        "unknown key",
        "remove it (allowed: chapter, hints, learner_files, order, title)",
    ),
    _case("missing-services", manifest(services=""), "services", "missing table", "add a"),
    _case(
        "no-service",
        manifest(services="[services]\n", links=""),
        "services",
        "at least one service",
        "add a [services.NAME] table",
    ),
    _case(
        "unknown-key-in-service",
        manifest(services=SERVICES.replace('ready = { http = "/health" }', 'image = "pay:1"')),
        "services.payments.image",
        "unknown key",
        "remove it (allowed: command, env, ready)",
    ),
    _case(
        "empty-command",
        manifest(services=SERVICES.replace('["python", "-m", "services.payments"]', "[]")),
        "services.payments.command",
        "empty command",
        "give argv",
    ),
    _case(
        "command-not-a-list",
        manifest(
            services=SERVICES.replace(
                '["python", "-m", "services.payments"]', '"python -m services.payments"'
            )
        ),
        "services.payments.command",
        "not a list of non-empty texts",
        "set services.payments.command",
    ),
    _case(
        "upper-case-service-name",
        manifest(services=SERVICES.replace("[services.ledger-db]", "[services.Ledger]"), links=""),
        "services.Ledger",
        "bad service name 'Ledger'",
        "use lowercase letters, digits and '-'",
    ),
    _case(
        "underscore-in-service-name",
        manifest(
            services=SERVICES.replace("[services.ledger-db]", "[services.ledger_db]"), links=""
        ),
        "services.ledger_db",
        "bad service name 'ledger_db'",
        "use lowercase letters, digits and '-'",
    ),
    _case(
        "service-named-checks",
        manifest(services=SERVICES.replace("[services.ledger-db]", "[services.checks]"), links=""),
        "services.checks",
        "bad service name 'checks'",
        "use lowercase letters",
    ),
    _case(
        "env-value-not-text",
        manifest(services=SERVICES.replace('MODE = "strict"', "MODE = 1")),
        "services.ledger-db.env.MODE",
        "missing or not a text",
        'set services.ledger-db.env.MODE = "..."',
    ),
    _case(
        "link-to-unknown-service",
        manifest(links=LINKS + '"payments -> ghost" = {}\n'),
        'links."payments -> ghost"',
        "unknown service 'ghost'",
        "declare [services.ghost]",
    ),
    _case(
        "link-from-unknown-service",
        manifest(links=LINKS + '"ghost -> payments" = {}\n'),
        'links."ghost -> payments"',
        "unknown service 'ghost'",
        "declare [services.ghost]",
    ),
    _case(
        "malformed-link-text",
        manifest(links=LINKS + '"payments => ledger-db" = {}\n'),
        'links."payments => ledger-db"',
        "not a link",
        'write "source -> target"',
    ),
    _case(
        "link-to-checks",
        manifest(links=LINKS + '"payments -> checks" = {}\n'),
        'links."payments -> checks"',
        "a link must go from a service or checks to another service",
        "fix the link",
    ),
    _case(
        "link-to-itself",
        manifest(links=LINKS + '"payments -> payments" = {}\n'),
        'links."payments -> payments"',
        "a link must go from a service or checks to another service",
        "fix the link",
    ),
    _case(
        "link-with-options",
        manifest(
            links=LINKS.replace('"checks -> payments" = {}', '"checks -> payments" = { a = 1 }')
        ),
        'links."checks -> payments".a',
        "unknown key",
        "remove it (allowed: tap)",
    ),
    _case(
        "http-readiness-not-a-path",
        manifest(services=SERVICES.replace('{ http = "/health" }', '{ http = "health" }')),
        "services.payments.ready.http",
        "'health' is not a path",
        "start with /",
    ),
    _case(
        "both-http-and-port",
        manifest(
            services=SERVICES.replace('{ http = "/health" }', '{ http = "/health", port = true }')
        ),
        "services.payments.ready",
        "both http and port given",
        "keep one of them",
    ),
    _case(
        "unknown-readiness-key",
        manifest(services=SERVICES.replace('{ http = "/health" }', '{ log = "started" }')),
        "services.payments.ready.log",
        "unknown key",
        "remove it (allowed: http, port, timeout)",
    ),
    _case(
        "unknown-key-in-checks",
        manifest(checks=CHECKS + "retries = 3\n"),
        "checks.retries",
        "unknown key",
        "remove it (allowed: points, starter_fails)",
    ),
    _case(
        "points-not-a-whole-number",
        manifest(checks=CHECKS + "points = { test_1_charges_once = 1.5 }\n"),
        "checks.points.test_1_charges_once",
        "not a check's name and a whole number of points",
        "0 or more points",
    ),
    _case(
        "points-of-no-check",
        manifest(checks=CHECKS + "points = { charges = 2 }\n"),
        "checks.points.charges",
        "not a check's name",
        "name a check",
    ),
    _case(
        "prometheus-scrapes-no-such-service",
        manifest(checks=CHECKS + '[prometheus]\nscrape = ["shop"]\n'),
        "prometheus.scrape",
        "'shop' is not one of the lab's services (payments, ledger-db)",
        "name services that serve metrics",
    ),
    _case(
        "tracing-of-no-such-service",
        manifest(checks=CHECKS + '[tracing]\nservices = ["shop"]\n'),
        "tracing.services",
        "'shop' is not one of the lab's services (payments, ledger-db)",
        "name services that export spans",
    ),
    _case(
        "tracing-of-nothing",
        manifest(checks=CHECKS + "[tracing]\nservices = []\n"),
        "tracing.services",
        "no service sends spans",
        'services = ["<service>"]',
    ),
    _case(
        "postgres-of-no-such-service",
        manifest(checks=CHECKS + '[postgres]\nusers = ["shop"]\n'),
        "postgres.users",
        "'shop' is not one of the lab's services (payments, ledger-db)",
        "name services that use the database",
    ),
    _case(
        "postgres-of-nobody",
        manifest(checks=CHECKS + "[postgres]\nusers = []\n"),
        "postgres.users",
        "no service uses it",
        'users = ["<service>"]',
    ),
    _case(
        "tracing-unknown-key",
        manifest(checks=CHECKS + '[tracing]\nservices = ["payments"]\nsampler = 1\n'),
        "tracing.sampler",
        "unknown key",
        "remove it (allowed: services)",
    ),
    _case(
        "secret-of-no-such-service",
        manifest(checks=CHECKS + '[secrets]\nCLIENT_SECRET = ["shop"]\n'),
        "secrets.CLIENT_SECRET",
        "'shop' is not one of the lab's services (payments, ledger-db)",
        "name services that need this secret",
    ),
    _case(
        "secret-for-nobody",
        manifest(checks=CHECKS + "[secrets]\nCLIENT_SECRET = []\n"),
        "secrets.CLIENT_SECRET",
        "no service gets this secret",
        '["<service>", ...]',
    ),
    _case(
        "secret-with-a-bad-name",
        manifest(checks=CHECKS + '[secrets]\nclient-secret = ["payments"]\n'),
        "secrets.client-secret",
        "bad variable name 'client-secret'",
        "use A-Z, digits and '_'",
    ),
    _case(
        "prometheus-scrapes-nothing",
        manifest(checks=CHECKS + "[prometheus]\nscrape = []\n"),
        "prometheus.scrape",
        "no service to scrape",
        'scrape = ["<service>"]',
    ),
    _case(
        "prometheus-interval-not-seconds",
        manifest(checks=CHECKS + '[prometheus]\nscrape = ["payments"]\ninterval = "1s"\n'),
        "prometheus.interval",
        "not a number of seconds from 0.1 to 60",
        "write 1.0",
    ),
    _case(
        "prometheus-rules-missing",
        manifest(checks=CHECKS + '[prometheus]\nscrape = ["payments"]\nrules = ["alerts.yml"]\n'),
        "prometheus.rules",
        "'alerts.yml' is not a file in the lab's folder",
        "fix it",
    ),
    _case(
        "prometheus-rules-outside-the-lab",
        manifest(checks=CHECKS + '[prometheus]\nscrape = ["payments"]\nrules = ["../x.yml"]\n'),
        "prometheus.rules",
        "'../x.yml' is not a file in the lab's folder",
        "fix it",
    ),
    _case(
        "tls-unknown-service",
        manifest(checks=CHECKS + '[tls]\nidentities = ["payments", "auth"]\n'),
        "tls.identities",
        "'auth' is not one of the lab's services (payments, ledger-db)",
        "name services that get a certificate",
    ),
    _case(
        "tls-no-identity",
        manifest(checks=CHECKS + "[tls]\nidentities = []\n"),
        "tls.identities",
        "no service gets a certificate",
        'write ["<service>", ...]',
    ),
    _case(
        "link-tap-not-a-bool",
        manifest(links='[links]\n"checks -> payments" = { tap = "yes" }\n'),
        'links."checks -> payments".tap',
        "not true or false",
        "write tap = true",
    ),
    _case(
        "service-named-like-the-tap",
        manifest(services=SERVICES.replace("[services.ledger-db]", "[services.wiretap]")),
        "services.wiretap",
        "bad service name 'wiretap'",
        "use lowercase letters, digits and '-'",
    ),
    _case(
        "prometheus-unknown-key",
        manifest(checks=CHECKS + '[prometheus]\nscrape = ["payments"]\nport = 9090\n'),
        "prometheus.port",
        "unknown key",
        "remove it",
    ),
]


@pytest.mark.parametrize(("text", "key", "problem", "fix"), INVALID)
def test_invalid_manifest_error_names_file_key_and_fix(write_lab, text, key, problem, fix):
    root = write_lab(text)

    with pytest.raises(LabDefinitionError) as caught:
        load_lab(root)

    error = caught.value
    assert error.path == str(root.resolve() / "lab.toml")
    assert error.key == key
    assert problem in error.problem
    assert fix in error.fix
    text = str(error)
    assert text.startswith(f"{root.resolve() / 'lab.toml'}: [{key}]: ")
    assert f"\n  Fix: {error.fix}" in text


def test_bad_toml_names_the_file_and_says_fix_the_syntax(write_lab):
    root = write_lab(manifest() + "\n[lab\n")

    with pytest.raises(LabDefinitionError) as caught:
        load_lab(root)

    error = caught.value
    assert error.path == str(root.resolve() / "lab.toml")
    assert error.key is None
    assert "not valid TOML" in error.problem
    assert "line" in error.problem  # tomllib's position, so the author can find it
    assert error.fix == "fix the syntax"
    assert str(error).startswith(f"{root.resolve() / 'lab.toml'}: not valid TOML")


def test_missing_manifest_says_create_it(tmp_path):
    with pytest.raises(LabDefinitionError) as caught:
        load_lab(tmp_path)

    assert caught.value.path == str(tmp_path.resolve() / "lab.toml")
    assert caught.value.problem == "file not found"
    assert caught.value.fix == "create lab.toml"


def test_readiness_timeout_not_a_number_names_the_key(write_lab):
    text = manifest(
        services=SERVICES.replace('{ http = "/health" }', '{ http = "/health", timeout = "soon" }')
    )
    with pytest.raises(LabDefinitionError) as caught:
        load_lab(write_lab(text))
    assert caught.value.key == "services.payments.ready.timeout"


def test_duplicate_link_is_rejected(write_lab):
    text = manifest(links=LINKS + '"payments->ledger-db" = {}\n')
    with pytest.raises(LabDefinitionError) as caught:
        load_lab(write_lab(text))
    assert caught.value.key == 'links."payments->ledger-db"'


# -- Lab.link --------------------------------------------------------------------------------
def test_unknown_link_error_lists_the_known_links_and_the_fix(write_lab):
    lab = load_lab(write_lab(manifest()))

    with pytest.raises(LabDefinitionError) as caught:
        lab.link("ledger-db", "payments")

    error = caught.value
    assert error.key == "links"
    assert "no link 'ledger-db -> payments'" in error.problem
    assert "(the lab has: checks -> payments, payments -> ledger-db)" in error.problem
    assert error.fix == 'add "ledger-db -> payments" = {} under [links]'


# -- the catalogue ---------------------------------------------------------------------------
def test_catalogue_is_in_course_order_chapter_then_order_then_slug(write_lab, tmp_path):
    root = tmp_path / "labs"
    write_lab(short_lab("Sagas", 10, 1), slug="saga", files=())
    write_lab(short_lab("Keys", 7, 2), slug="idempotency-keys", files=())
    write_lab(short_lab("Consumers", 7, 1), slug="at-least-once", files=())
    write_lab(short_lab("Breaker", 8, 1), slug="circuit-breaker", files=())
    write_lab(short_lab("Backoff", 8, 1), slug="backoff", files=())
    (root / "not-a-lab").mkdir()

    slugs = [lab.slug for lab in catalogue(root)]

    assert slugs == ["at-least-once", "idempotency-keys", "backoff", "circuit-breaker", "saga"]


def test_catalogue_without_a_labs_folder_says_set_chaoslab_labs(tmp_path):
    with pytest.raises(UnknownLabError, match="Fix: set CHAOSLAB_LABS"):
        catalogue(tmp_path / "missing")


def test_scan_keeps_the_catalogue_when_one_lab_is_broken(write_lab, tmp_path):
    root = tmp_path / "labs"
    write_lab(short_lab("Keys", 7, 2), slug="idempotency-keys", files=())
    broken = write_lab(short_lab("Breaker", 8, 1), slug="circuit-breaker", files=())
    (broken / "lab.toml").write_bytes(b'[lab]\ntitle = "caf\xe9"\n')

    labs, bad = scan(root)

    assert [lab.slug for lab in labs] == ["idempotency-keys"]
    assert [(b.slug, b.root) for b in bad] == [("circuit-breaker", broken)]
    assert "not UTF-8" in str(bad[0].error)
    with pytest.raises(LabDefinitionError, match="not UTF-8"):
        catalogue(root)


def test_non_utf8_manifest_names_the_line_and_the_fix(write_lab):
    root = write_lab(manifest())
    (root / "lab.toml").write_bytes(b'[lab]\n# caf\xe9\ntitle = "x"\n')

    with pytest.raises(LabDefinitionError) as caught:
        load_lab(root)

    assert caught.value.problem == "not UTF-8 text (byte 0xe9 on line 2)"
    assert caught.value.fix == "save the file as UTF-8"


def test_a_manifest_that_is_a_folder_cannot_be_read(tmp_path):
    (tmp_path / "lab.toml").mkdir()

    with pytest.raises(LabDefinitionError, match=r"cannot be read \(Is a directory\)"):
        load_lab(tmp_path)


def test_labs_root_follows_chaoslab_labs(monkeypatch, tmp_path):
    monkeypatch.setenv("CHAOSLAB_LABS", str(tmp_path))
    assert labs_root() == tmp_path.resolve()
    monkeypatch.delenv("CHAOSLAB_LABS")
    assert labs_root().name == "labs"


# -- find_lab --------------------------------------------------------------------------------
def test_find_lab_by_name_in_the_catalogue(write_lab, tmp_path):
    write_lab(manifest())

    lab = find_lab("idempotency-keys", root=tmp_path / "labs")

    assert lab.slug == "idempotency-keys"


def test_find_lab_by_folder_path(write_lab, tmp_path):
    root = write_lab(manifest())

    lab = find_lab(str(root), root=tmp_path / "elsewhere")

    assert lab.root == root.resolve()


def test_unknown_lab_suggests_a_close_name_and_lists_the_labs(write_lab, tmp_path):
    write_lab(manifest())
    write_lab(short_lab("Breaker", 8, 1), slug="circuit-breaker", files=())

    with pytest.raises(UnknownLabError) as caught:
        find_lab("idempotency", root=tmp_path / "labs")

    text = str(caught.value)
    assert "unknown lab 'idempotency'." in text
    assert "Did you mean 'idempotency-keys'?" in text
    assert "Labs: circuit-breaker, idempotency-keys." in text
    assert "chaoslab list" in text


def test_unknown_lab_with_nothing_close_suggests_nothing(write_lab, tmp_path):
    write_lab(manifest())

    with pytest.raises(UnknownLabError) as caught:
        find_lab("raft", root=tmp_path / "labs")

    assert "Did you mean" not in str(caught.value)
    assert "Labs: idempotency-keys." in str(caught.value)


def test_a_folder_without_a_manifest_is_not_a_lab(tmp_path):
    with pytest.raises(UnknownLabError, match=r"is a folder but not a lab: it has no lab\.toml"):
        find_lab(str(tmp_path), root=tmp_path / "elsewhere")


def test_unknown_lab_without_a_labs_folder_says_set_chaoslab_labs(tmp_path):
    with pytest.raises(UnknownLabError, match="Fix: set CHAOSLAB_LABS"):
        find_lab("raft", root=tmp_path / "missing")


def test_unknown_lab_in_an_empty_catalogue_says_none(tmp_path):
    with pytest.raises(UnknownLabError, match="Labs: none"):
        find_lab("raft", root=tmp_path)


def test_unknown_lab_with_a_typo_suggests_the_close_name(write_lab, tmp_path):
    write_lab(manifest())

    with pytest.raises(UnknownLabError) as caught:
        find_lab("idempotency-kyes", root=tmp_path / "labs")

    assert "Did you mean 'idempotency-keys'?" in str(caught.value)
