"""A lab's manifest (`lab.toml`) as typed, validated dataclasses, and the catalogue of labs.

Every error names the file, the key and the fix, because the person reading it is usually a
lab author at their desk or an instructor ten minutes before a class.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness._errors import LabDefinitionError, UnknownLabError
from harness.metrics.config import MetricsSpec
from harness.postgres.spec import PostgresSpec
from harness.tracing.config import TracingSpec

MANIFEST = "lab.toml"
CHECKS = "checks"  # the pseudo-service the lab's checks run in
TAP = "wiretap"  # the harness's wire tap, run beside the services when a link is tapped
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_LINK = re.compile(r"^\s*([a-z][a-z0-9-]*)\s*->\s*([a-z][a-z0-9-]*)\s*$")


@dataclass(frozen=True)
class Readiness:
    """How the harness knows a service is ready: an HTTP path answering 2xx, or an open port."""

    kind: Literal["http", "port"] = "http"
    path: str = "/health"
    timeout: float = 20.0


@dataclass(frozen=True)
class ServiceSpec:
    """One service of a lab, started the same way on every backend."""

    name: str
    command: tuple[str, ...]
    ready: Readiness = field(default_factory=Readiness)
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def env_prefix(self) -> str:
        """The prefix of this service's variables in its peers' environment (`LEDGER_URL`)."""
        return env_name(self.name)


@dataclass(frozen=True)
class Link:
    """A directed connection `source -> target`, carried by one Toxiproxy proxy."""

    source: str
    target: str
    # `{ tap = true }`: a wire tap between the proxy and the service keeps every byte that
    # crosses (harness/tap.py). Not part of the link's identity.
    tap: bool = field(default=False, compare=False)

    @property
    def name(self) -> str:
        """The proxy's name on the Toxiproxy server."""
        return f"{self.source}__{self.target}"

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


@dataclass(frozen=True)
class Lab:
    """A lab: its story lives in README.md, its shape in lab.toml."""

    slug: str
    root: Path
    title: str
    chapter: int
    order: int
    learner_files: tuple[str, ...]
    hints: tuple[str, ...]
    services: Mapping[str, ServiceSpec]
    links: tuple[Link, ...]
    starter_fails: tuple[str, ...]
    # Points a check is worth when graded (`[checks] points`); a check not listed is worth 1.
    points: Mapping[str, int] = field(default_factory=dict)
    # `[prometheus]`: the lab needs a Prometheus per run, scraping these services.
    metrics: MetricsSpec | None = None
    # `[tracing]`: the lab needs a Jaeger per run, receiving these services' spans.
    tracing: TracingSpec | None = None
    # `[secrets]`: variables the harness fills with a new random value each run, and the
    # services that get them (a client secret is never committed, nor shared by two runs).
    secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # `[tls] identities`: services that get a certificate from the run's CA in TLS_DIR.
    tls: tuple[str, ...] = ()
    # `[postgres] users`: the lab needs a PostgreSQL per run; these services get DATABASE_URL.
    postgres: PostgresSpec | None = None

    @property
    def tapped(self) -> tuple[Link, ...]:
        return tuple(link for link in self.links if link.tap)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def checks_dir(self) -> Path:
        return self.root / "tests"

    @property
    def solution_dir(self) -> Path:
        return self.root / "solution"

    def link(self, source: str, target: str) -> Link:
        """The link `source -> target`, or an error that lists the links the lab has."""
        for link in self.links:
            if link.source == source and link.target == target:
                return link
        known = ", ".join(str(x) for x in self.links)
        raise LabDefinitionError(
            self.manifest,
            "links",
            f"no link '{source} -> {target}' (the lab has: {known})",
            f'add "{source} -> {target}" = {{}} under [links]',
        )

    def learner_owns(self, service: str) -> bool:
        """True when the learner edits the code this service runs (`-m services.x`)."""
        command = self.services[service].command
        files = set(self.learner_files)
        for i, arg in enumerate(command):
            if arg == "-m" and i + 1 < len(command):
                module = command[i + 1].replace(".", "/")
                if f"{module}.py" in files or f"{module}/__init__.py" in files:
                    return True
            elif arg.endswith(".py") and arg in files:
                return True
        return False

    def check_names(self) -> list[str]:
        """The checks' names (`test_1_...`), read from the check files in order."""
        names = []
        for path in sorted(self.checks_dir.glob("test_*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("def test_"):
                    names.append(line.removeprefix("def ").split("(", 1)[0])
        return names

    def links_from(self, source: str) -> tuple[Link, ...]:
        return tuple(x for x in self.links if x.source == source)


def env_name(service: str) -> str:
    """The one naming rule for environment variables: `ledger-db` becomes `LEDGER_DB`."""
    return service.upper().replace("-", "_")


# The checkout that holds harness/ (and labs/, pyproject.toml): where the harness runs from.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def labs_root() -> Path:
    """Where the catalogue lives: `$CHAOSLAB_LABS`, else the `labs/` folder beside `harness/`."""
    configured = os.environ.get("CHAOSLAB_LABS")
    if configured:
        return Path(configured).resolve()
    return PROJECT_ROOT / "labs"


@dataclass(frozen=True)
class BrokenLab:
    """A folder of the catalogue whose lab.toml does not load; `error` says why and the fix."""

    slug: str
    root: Path
    error: LabDefinitionError


def scan(root: Path | None = None) -> tuple[list[Lab], list[BrokenLab]]:
    """Every lab under `root` in course order, and apart the ones that do not load: one broken
    lab must not hide the catalogue."""
    base = _labs_folder(root)
    labs: list[Lab] = []
    broken: list[BrokenLab] = []
    for manifest in sorted(base.glob(f"*/{MANIFEST}")):
        try:
            labs.append(load_lab(manifest.parent))
        except LabDefinitionError as exc:
            broken.append(BrokenLab(manifest.parent.name, manifest.parent, exc))
    return sorted(labs, key=lambda lab: (lab.chapter, lab.order, lab.slug)), broken


def catalogue(root: Path | None = None) -> list[Lab]:
    """Every lab under `root`, in course order (chapter, then order); a broken one raises."""
    labs, broken = scan(root)
    if broken:
        raise broken[0].error
    return labs


def _labs_folder(root: Path | None) -> Path:
    base = root or labs_root()
    if not base.is_dir():
        raise UnknownLabError(
            f"no labs folder at {base}.\n  Fix: set CHAOSLAB_LABS to the labs folder (the one "
            "with a folder per lab), or unset it to use the labs beside the harness."
        )
    return base


def find_lab(name: str, root: Path | None = None) -> Lab:
    """The lab named `name` (its folder name), or a path to a lab folder."""
    as_path = Path(name)
    if (as_path / MANIFEST).exists():
        return load_lab(as_path)
    base = root or labs_root()
    candidate = base / name
    if (candidate / MANIFEST).exists():
        return load_lab(candidate)
    if as_path.is_dir() and (os.sep in name or name in (".", "..")):
        raise UnknownLabError(
            f"{as_path.resolve()} is a folder but not a lab: it has no {MANIFEST}.\n"
            "  Fix: give a lab's folder (the one with lab.toml) or a lab's name "
            "(see 'chaoslab list')."
        )
    base = _labs_folder(base)
    known = [p.parent.name for p in sorted(base.glob(f"*/{MANIFEST}"))]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or [
        k for k in known if name in k or k in name
    ]
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    raise UnknownLabError(
        f"unknown lab '{name}'.{suggestion} Labs: {', '.join(known) or 'none'}."
        " Run 'chaoslab list' to see the catalogue."
    )


def load_lab(root: Path | str) -> Lab:
    """Load and validate `root/lab.toml`."""
    root = Path(root).resolve()
    path = root / MANIFEST
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LabDefinitionError(path, None, "file not found", "create lab.toml") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise LabDefinitionError(
            path,
            None,
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line})",
            "save the file as UTF-8",
        ) from None
    except OSError as exc:
        raise LabDefinitionError(
            path, None, f"cannot be read ({exc.strerror or exc})", "make it a readable file"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabDefinitionError(path, None, f"not valid TOML: {exc}", "fix the syntax") from None
    return _parse(root, path, data)


def _parse(root: Path, path: Path, data: dict[str, Any]) -> Lab:
    _only(
        path,
        None,
        data,
        {
            *("lab", "services", "links", "checks", "prometheus", "tracing", "secrets", "tls"),
            "postgres",
        },
    )
    meta = _table(path, "lab", data.get("lab"))
    _only(path, "lab", meta, {"title", "chapter", "order", "learner_files", "hints"})
    title = _str(path, "lab.title", meta.get("title"))
    chapter = _int(path, "lab.chapter", meta.get("chapter"))
    order = _int(path, "lab.order", meta.get("order", 0))
    learner_files = _strs(path, "lab.learner_files", meta.get("learner_files"))
    hints = _strs(path, "lab.hints", meta.get("hints"))
    if len(hints) < 2:
        raise LabDefinitionError(
            path, "lab.hints", "a lab needs at least two hints", "add hints, gentlest first"
        )
    for rel in learner_files:
        if not rel.startswith("services/"):
            raise LabDefinitionError(
                path,
                "lab.learner_files",
                f"'{rel}' is not under services/",
                "the learner edits services; solution/ overlays services/",
            )
        if not (root / rel).is_file():
            raise LabDefinitionError(
                path, "lab.learner_files", f"'{rel}' does not exist", "fix the path"
            )

    services = _services(path, _table(path, "services", data.get("services")))
    links = _links(path, _table(path, "links", data.get("links", {})), services)
    checks = _table(path, "checks", data.get("checks", {}))
    _only(path, "checks", checks, {"starter_fails", "points"})
    starter_fails = _strs(path, "checks.starter_fails", checks.get("starter_fails", []))
    points = _points(path, checks.get("points", {}))
    metrics = _metrics(root, path, data.get("prometheus"), services)
    tracing = _tracing(path, data.get("tracing"), services)
    secrets = _secrets(path, data.get("secrets", {}), services)
    tls = _tls(path, data.get("tls"), services)
    postgres = _postgres(path, data.get("postgres"), services)
    return Lab(
        slug=root.name,
        root=root,
        title=title,
        chapter=chapter,
        order=order,
        learner_files=learner_files,
        hints=hints,
        services=services,
        links=links,
        starter_fails=starter_fails,
        points=points,
        metrics=metrics,
        tracing=tracing,
        secrets=secrets,
        tls=tls,
        postgres=postgres,
    )


def _points(path: Path, value: object) -> dict[str, int]:
    """`[checks] points = { test_1_x = 2 }`: whole points of 0 or more, per check name."""
    if not isinstance(value, dict):
        raise LabDefinitionError(
            path, "checks.points", "must be a table", "write points = { test_1_x = 2 }"
        )
    points = {}
    for name, worth in value.items():
        if not name.startswith("test_") or type(worth) is not int or worth < 0:
            raise LabDefinitionError(
                path,
                f"checks.points.{name}",
                f"{name} = {worth!r} is not a check's name and a whole number of points",
                "name a check (test_<n>_...) and give it 0 or more points",
            )
        points[name] = worth
    return points


def _metrics(
    root: Path, path: Path, raw: object, services: Mapping[str, ServiceSpec]
) -> MetricsSpec | None:
    """`[prometheus] scrape = ["checkout"], interval = 1.0, rules = ["alerts.yml"],
    readers = ["controller"]`."""
    if raw is None:
        return None
    table = _table(path, "prometheus", raw)
    _only(path, "prometheus", table, {"scrape", "interval", "rules", "path", "readers"})
    scrape = _service_names(
        path, "prometheus.scrape", table.get("scrape"), services, "serve metrics"
    )
    if not scrape:
        raise LabDefinitionError(
            path, "prometheus.scrape", "no service to scrape", 'write scrape = ["<service>"]'
        )
    interval = table.get("interval", MetricsSpec.interval)
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        interval = -1
    if not 0.1 <= interval <= 60:
        raise LabDefinitionError(
            path, "prometheus.interval", "not a number of seconds from 0.1 to 60", "write 1.0"
        )
    rules = _strs(path, "prometheus.rules", table.get("rules", []))
    for rel in rules:
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not (root / rel).is_file():
            raise LabDefinitionError(
                path, "prometheus.rules", f"'{rel}' is not a file in the lab's folder", "fix it"
            )
    metrics_path = _str(path, "prometheus.path", table.get("path", MetricsSpec.path))
    if not metrics_path.startswith("/"):
        raise LabDefinitionError(
            path, "prometheus.path", f"'{metrics_path}' is not a path", "start with /"
        )
    readers = _service_names(
        path, "prometheus.readers", table.get("readers", []), services, "query Prometheus"
    )
    return MetricsSpec(float(interval), rules, metrics_path, scrape, readers)


def _service_names(
    path: Path, key: str, raw: object, services: Mapping[str, ServiceSpec], which: str
) -> tuple[str, ...]:
    """A list of the lab's service names (`which`: what those services do, for the fix)."""
    names = _strs(path, key, raw)
    for name in names:
        if name not in services:
            raise LabDefinitionError(
                path,
                key,
                f"'{name}' is not one of the lab's services ({', '.join(services)})",
                f"name services that {which}",
            )
    return names


def _tracing(path: Path, raw: object, services: Mapping[str, ServiceSpec]) -> TracingSpec | None:
    """`[tracing] services = ["gateway", "orders"]`: the services that export spans."""
    if raw is None:
        return None
    names = _naming_services(
        path, raw, "tracing.services", services, "export spans", "no service sends spans",
        'write services = ["<service>"]',
    )  # fmt: skip
    return TracingSpec(names)


def _postgres(path: Path, raw: object, services: Mapping[str, ServiceSpec]) -> PostgresSpec | None:
    """`[postgres] users = ["accounts"]`: the services that use the run's database."""
    if raw is None:
        return None
    names = _naming_services(
        path, raw, "postgres.users", services, "use the database", "no service uses it",
        'write users = ["<service>"]',
    )  # fmt: skip
    return PostgresSpec(names)


def _tls(path: Path, raw: object, services: Mapping[str, ServiceSpec]) -> tuple[str, ...]:
    """`[tls] identities = ["checkout", "payments"]`: who gets a certificate of the run's CA."""
    if raw is None:
        return ()
    return _naming_services(
        path, raw, "tls.identities", services, "get a certificate",
        "no service gets a certificate", 'write ["<service>", ...]',
    )  # fmt: skip


def _naming_services(
    path: Path,
    raw: object,
    key: str,
    services: Mapping[str, ServiceSpec],
    which: str,
    nobody: str,
    fix: str,
) -> tuple[str, ...]:
    """A table whose one key (`section.key`) lists some of the lab's services, at least one."""
    section, name = key.split(".")
    table = _table(path, section, raw)
    _only(path, section, table, {name})
    names = _service_names(path, key, table.get(name), services, which)
    if not names:
        raise LabDefinitionError(path, key, nobody, fix)
    return names


def _secrets(
    path: Path, raw: object, services: Mapping[str, ServiceSpec]
) -> dict[str, tuple[str, ...]]:
    """`[secrets] ORDERS_CLIENT_SECRET = ["auth", "orders"]`: who gets each run's secret."""
    table = _table(path, "secrets", raw)
    secrets = {}
    for name, holders in table.items():
        key = f"secrets.{name}"
        if not _VARIABLE.match(name):
            raise LabDefinitionError(
                path, key, f"bad variable name '{name}'", "use A-Z, digits and '_'"
            )
        secrets[name] = _service_names(path, key, holders, services, "need this secret")
        if not secrets[name]:
            raise LabDefinitionError(
                path, key, "no service gets this secret", 'write ["<service>", ...]'
            )
    return secrets


def _services(path: Path, table: dict[str, Any]) -> dict[str, ServiceSpec]:
    if not table:
        raise LabDefinitionError(
            path, "services", "a lab needs at least one service", "add a [services.NAME] table"
        )
    services: dict[str, ServiceSpec] = {}
    for name, raw in table.items():
        key = f"services.{name}"
        if not _NAME.match(name) or name in (CHECKS, TAP):
            raise LabDefinitionError(
                path, key, f"bad service name '{name}'", "use lowercase letters, digits and '-'"
            )
        spec = _table(path, key, raw)
        _only(path, key, spec, {"command", "ready", "env"})
        command = _strs(path, f"{key}.command", spec.get("command"))
        if not command:
            raise LabDefinitionError(path, f"{key}.command", "empty command", "give argv")
        env = _table(path, f"{key}.env", spec.get("env", {}))
        for k, v in env.items():
            _str(path, f"{key}.env.{k}", v)
        services[name] = ServiceSpec(
            name=name,
            command=command,
            ready=_readiness(path, f"{key}.ready", spec.get("ready", {"http": "/health"})),
            env=dict(env),
        )
    return services


def _readiness(path: Path, key: str, raw: object) -> Readiness:
    spec = _table(path, key, raw)
    _only(path, key, spec, {"http", "port", "timeout"})
    timeout = spec.get("timeout", Readiness.timeout)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise LabDefinitionError(
            path, f"{key}.timeout", "not a positive number of seconds", f"set {key}.timeout = 20"
        )
    if "http" in spec and "port" in spec:
        raise LabDefinitionError(path, key, "both http and port given", "keep one of them")
    if "port" in spec:
        return Readiness(kind="port", path="", timeout=float(timeout))
    http = _str(path, f"{key}.http", spec.get("http", "/health"))
    if not http.startswith("/"):
        raise LabDefinitionError(path, f"{key}.http", f"'{http}' is not a path", "start with /")
    return Readiness(kind="http", path=http, timeout=float(timeout))


def _links(
    path: Path, table: dict[str, Any], services: Mapping[str, ServiceSpec]
) -> tuple[Link, ...]:
    links = []
    for text, options in table.items():
        key = f'links."{text}"'
        match = _LINK.match(text)
        if not match:
            raise LabDefinitionError(path, key, "not a link", 'write "source -> target"')
        source, target = match.groups()
        for end in (source, target):
            if end != CHECKS and end not in services:
                raise LabDefinitionError(
                    path, key, f"unknown service '{end}'", f"declare [services.{end}]"
                )
        if target in (CHECKS, source):
            raise LabDefinitionError(
                path,
                key,
                "a link must go from a service or checks to another service",
                "fix the link",
            )
        table = _table(path, key, options)
        _only(path, key, table, {"tap"})
        tap = table.get("tap", False)
        if not isinstance(tap, bool):
            raise LabDefinitionError(path, f"{key}.tap", "not true or false", "write tap = true")
        link = Link(source, target, tap=tap)
        if link in links:
            raise LabDefinitionError(path, key, f"link '{link}' is declared twice", "keep one")
        links.append(link)
    return tuple(links)


def _only(path: Path, key: str | None, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        where = f"{key}." if key else ""
        allowed_text = ", ".join(sorted(allowed)) or "nothing"
        raise LabDefinitionError(
            path, f"{where}{unknown[0]}", "unknown key", f"remove it (allowed: {allowed_text})"
        )


def _table(path: Path, key: str, value: object) -> dict[str, Any]:
    if value is None:
        raise LabDefinitionError(path, key, "missing table", f"add a [{key}] table")
    if not isinstance(value, dict):
        raise LabDefinitionError(path, key, "must be a table", f"write [{key}] or {{ ... }}")
    return value


def _str(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LabDefinitionError(path, key, "missing or not a text", f'set {key} = "..."')
    return value


def _int(path: Path, key: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LabDefinitionError(path, key, "missing or not a whole number", f"set {key} = 7")
    return value


def _strs(path: Path, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise LabDefinitionError(
            path, key, "missing or not a list of non-empty texts", f'set {key} = ["..."]'
        )
    return tuple(value)
