"""A lab, running: its services on a backend, one Toxiproxy proxy per link, and a way to reach
each service from the checks. The one place that joins lab, backend and Toxiproxy.

Naming rule (the same for processes and containers): a service gets `PORT` to listen on,
`STATE_DIR` for files that must survive a crash (`SHARED_DIR` for files its replicas share),
and for each outgoing link `a -> b` the proxy's address as `B_URL` (`http://host:port`).
Services never see each other's real ports.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from typing import Self

from harness._errors import (
    LearnerServiceDown,
    PortInUse,
    ServiceNotReady,
    ToxiproxyError,
)
from harness.artifacts import Artifact
from harness.backends import Backend, backend_factory
from harness.crashpoints import service_env
from harness.faults import HttpControl
from harness.lab import CHECKS, TAP, Lab, Link, Readiness, ServiceSpec, env_name
from harness.metrics import Prometheus, PrometheusClient, find_prometheus, install_prometheus
from harness.metrics.config import render
from harness.metrics.harness_exporter import HarnessExporter
from harness.metrics.program import check_rules
from harness.pki import RunPKI
from harness.ports import free_ports
from harness.postgres import install_postgres
from harness.postgres.client import PostgresHandle
from harness.postgres.server import url as postgres_url
from harness.readiness import wait_ready
from harness.runs import Run
from harness.signals import signals_deferred
from harness.tap import recorded
from harness.tools import cache_root
from harness.toxiproxy import ToxiproxyClient
from harness.tracing import Jaeger, JaegerClient, find_jaeger, install_jaeger
from harness.tracing.config import render as render_jaeger
from harness.tracing.config import service_env as tracing_env
from harness.variants import overlay

TAP_READY = Readiness(kind="port", path="")


@dataclass
class Timings:
    """How long the start took, for `make bench` and for the learner's patience."""

    toxiproxy: float = 0.0
    proxies: float = 0.0
    services: float = 0.0
    prometheus: float = 0.0
    jaeger: float = 0.0
    postgres: float = 0.0
    total: float = 0.0


@dataclass
class LabEnvironment:
    """A running lab. Use as a context manager: whatever started is stopped, however it ends."""

    lab: Lab
    solution: bool = False
    seed: int = 0
    backend_name: str = "process"
    variant: Path | None = None  # a wrong or also-correct fix in place of the learner's code
    run: Run | None = None
    workdir: Path | None = None
    timings: Timings = field(default_factory=Timings)
    _backend: Backend | None = None
    _toxiproxy: ToxiproxyClient | None = None
    _service_ports: dict[str, int] = field(default_factory=dict)
    _proxy_ports: dict[Link, int] = field(default_factory=dict)
    http_faulted: set[str] = field(default_factory=set)  # services with HTTP fault rules
    _prometheus: PrometheusClient | None = None
    _prometheus_program_used: Prometheus | None = None
    _jaeger: JaegerClient | None = None
    # The harness's own metrics (faults on, what the clients saw), for a run with Prometheus.
    harness_metrics: HarnessExporter | None = None
    _otlp_port: int = 0
    _postgres: PostgresHandle | None = None
    _postgres_port: int = 0
    _prometheus_port: int = 0
    # Rule files `promtool check rules` refused (lab-relative path -> its words): the run's
    # Prometheus goes without them, and a check reports them.
    rule_problems: dict[str, str] = field(default_factory=dict)
    # `[secrets]` of the lab: new random values for each environment, never written to disk.
    secrets: dict[str, str] = field(default_factory=dict)
    # `[tls]` of the lab: the run's CA and the certificates it gave (None without `[tls]`).
    pki: RunPKI | None = None
    _tap_ports: dict[Link, int] = field(default_factory=dict)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start everything, or (on any error, Ctrl-C included) stop what had started.

        A port taken between its choice and its use (by another run on this machine) is not
        the lab's fault: everything is stopped and started again on new ports."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start()
            except (PortInUse, ToxiproxyError) as exc:
                self.stop()
                if attempt == PORT_ATTEMPTS or not _port_conflict(exc):
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _start(self) -> Self:
        begin = time.monotonic()
        program = self._prometheus_program()
        jaeger = self._jaeger_program()
        database = install_postgres() if self.lab.postgres is not None else None
        # The factory first: importing a backend registers its reaper, which Run.create runs.
        factory = backend_factory(self.backend_name)
        self.run = Run.create()
        self.workdir = self._prepare_workdir(self.run)
        services = list(self.lab.services)
        # Prometheus's port and the harness's metrics', and Jaeger's two (OTLP in, query out),
        # chosen with the others.
        extra = (2 if program is not None else 0) + (2 if jaeger is not None else 0)
        extra += 1 if database is not None else 0
        tapped = self.lab.tapped
        ports = free_ports(len(services) + len(self.lab.links) + extra + len(tapped))
        spare = ports[len(services) + len(self.lab.links) :]
        self._tap_ports = {link: spare.pop() for link in tapped}
        self._service_ports = dict(zip(services, ports, strict=False))
        links_end = len(services) + len(self.lab.links)
        self._proxy_ports = dict(zip(self.lab.links, ports[len(services) : links_end], strict=True))
        self._backend = factory(self.run, self.workdir)
        if program is not None:
            # First: Prometheus scrapes nothing for its first 5 s (its target discovery sends
            # updates at most every 5 s), so that wait runs while everything else starts.
            mark = time.monotonic()
            self._start_prometheus(program, spare.pop(), spare.pop())
            self.timings.prometheus = time.monotonic() - mark
        if jaeger is not None:
            mark = time.monotonic()
            self._start_jaeger(jaeger, spare.pop(), spare.pop())
            self.timings.jaeger = time.monotonic() - mark
        if database is not None:
            mark = time.monotonic()
            self._postgres_port = spare.pop()
            address = self._backend.start_postgres(database, self._postgres_port)
            self._postgres = PostgresHandle(address, self._backend.postgres_log)
            self.timings.postgres = time.monotonic() - mark
        # A container backend publishes on the host the proxy ports the checks use.
        published = [port for link, port in self._proxy_ports.items() if link.source == CHECKS]
        self._toxiproxy = self._backend.start_toxiproxy(self.seed, published)
        self.timings.toxiproxy = time.monotonic() - begin

        mark = time.monotonic()
        for link, port in self._proxy_ports.items():
            self._toxiproxy.create_proxy(
                link.name, self._backend.proxy_listen(port), self._upstream(link)
            )
        self.timings.proxies = time.monotonic() - mark

        mark = time.monotonic()
        if self.lab.tls:
            self.pki = RunPKI(self.run.dir / "tls")
            for name in self.lab.tls:
                self.pki.provision(name, self._tls_dir(name))
        if tapped:
            self._start_tap()
        for name in services:
            self._backend.start_service(
                self.lab.services[name], self.env_for(name), self._service_ports[name]
            )
        self._wait_all_ready(services + ([TAP] if tapped else []))
        self.timings.services = time.monotonic() - mark
        self.timings.total = time.monotonic() - begin
        return self

    def stop(self) -> None:
        """Stop everything and remove the run's folder; keeps a copy of the logs. Idempotent.

        Ctrl-C or SIGTERM during the teardown waits until it is done, then takes effect: an
        interrupted teardown would leave what it had not yet stopped."""
        with signals_deferred():
            self._stop()

    def _stop(self) -> None:
        if self._prometheus is not None:  # the server itself stops with the backend
            self._prometheus.close()
            self._prometheus = None
        if self.harness_metrics is not None:
            self.harness_metrics.stop()
            self.harness_metrics = None
        if self._jaeger is not None:  # so does Jaeger
            self._jaeger.close()
            self._jaeger = None
        self._postgres = None  # the server itself stops with the backend
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self._toxiproxy is not None:
            self._toxiproxy.close()
            self._toxiproxy = None
        if self.run is not None:
            try:
                self._keep_logs(self.run)
            except OSError as exc:  # a full or read-only cache loses the copy, not the cleanup
                print(f"chaoslab: the logs could not be kept: {exc}", file=sys.stderr)
            finally:
                self.run.close()
                self.run = None
                self.pki = None

    # -- what checks and faults use --------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError(f"lab '{self.lab.slug}' is not running")
        return self._backend

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        if self._toxiproxy is None:
            raise RuntimeError(f"lab '{self.lab.slug}' is not running")
        return self._toxiproxy

    @property
    def prometheus(self) -> PrometheusClient:
        """The run's Prometheus (a lab with a `[prometheus]` table has one)."""
        if self._prometheus is None:
            raise RuntimeError(f"lab '{self.lab.slug}' runs no Prometheus (see its lab.toml)")
        return self._prometheus

    @property
    def prometheus_url(self) -> str | None:
        return self._prometheus.url if self._prometheus is not None else None

    @property
    def prometheus_program(self) -> Prometheus | None:
        """The Prometheus release the run uses, with its promtool (None without one)."""
        return self._prometheus_program_used if self._prometheus is not None else None

    @property
    def postgres(self) -> PostgresHandle:
        """The run's PostgreSQL (a lab with a `[postgres]` table has one): connections for
        a check that seeds or reads the database, and the lock waits the server logged."""
        if self._postgres is None:
            raise RuntimeError(f"lab '{self.lab.slug}' runs no PostgreSQL (see its lab.toml)")
        return self._postgres

    @property
    def postgres_url(self) -> str | None:
        """The run's database URL as this machine reaches it (None without one)."""
        return self._postgres.url if self._postgres is not None else None

    @property
    def jaeger(self) -> JaegerClient:
        """The run's Jaeger (a lab with a `[tracing]` table has one)."""
        if self._jaeger is None:
            raise RuntimeError(f"lab '{self.lab.slug}' runs no Jaeger (see its lab.toml)")
        return self._jaeger

    @property
    def jaeger_url(self) -> str | None:
        return self._jaeger.url if self._jaeger is not None else None

    def url(self, service: str) -> str:
        """How the checks reach `service`: through the `checks -> service` proxy."""
        return self.proxy_url(self.lab.link(CHECKS, service))

    def proxy_url(self, link: Link) -> str:
        """Where the checks (or a person at a terminal) reach `link`'s proxy."""
        return f"http://{self.backend.proxy_address(self._proxy_ports[link], from_checks=True)}"

    def direct_url(self, service: str) -> str:
        """The service without any proxy: for reading what it recorded, never for traffic."""
        return f"http://{self.backend.direct_address(service, self._service_ports[service])}"

    def log_lines(self, service: str) -> list[str]:
        """What `service` has written to stdout and stderr so far, one line each, as it wrote
        them (without the time stamp the harness adds): for checks that judge its logs."""
        return self.backend.handle(service).log_lines()

    def state_dir(self, service: str) -> Path:
        """`service`'s STATE_DIR, on this machine: for a check that damages its files while it
        is down (a torn log tail), or reads them after it stopped. The same path on both
        backends (docker bind-mounts it)."""
        if self.run is None:
            raise RuntimeError(f"lab '{self.lab.slug}' is not running")
        if service not in self.lab.services:
            raise ValueError(f"lab '{self.lab.slug}' has no service '{service}'")
        return self.run.dir / "state" / service

    @property
    def shared_dir(self) -> Path:
        """The run's SHARED_DIR, which every service gets: for what replicas of a service share
        (a SQLite database), and a check may read. The same path on both backends."""
        if self.run is None:
            raise RuntimeError(f"lab '{self.lab.slug}' is not running")
        shared = self.run.dir / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        return shared

    def artifact(self, name: str) -> Artifact:
        """A file for the learner (a checker's picture of a violation): written into the
        run's logs folder now, kept with the logs (`chaoslab logs`) once the run ends."""
        if self.run is None:
            raise RuntimeError(f"lab '{self.lab.slug}' is not running")
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"an artifact's name is a file name, not a path: {name!r}")
        logs = self.run.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return Artifact(logs / name, logs_dir(self.lab.slug) / name)

    def env_for(self, service: str) -> dict[str, str]:
        spec = self.lab.services[service]
        assert self.run is not None
        state = self.run.dir / "state" / service
        state.mkdir(parents=True, exist_ok=True)
        env = {
            **self._process_env(service, self._service_ports[service], state),
            "SHARED_DIR": str(self.shared_dir),
            "CHAOSLAB_SEED": str(self.seed),
        }
        if service in self.lab.tls:
            env["TLS_DIR"] = str(self._tls_dir(service))
        for link in self.lab.links_from(service):
            address = self.backend.proxy_address(self._proxy_ports[link], from_checks=False)
            env[f"{env_name(link.target)}_URL"] = f"http://{address}"
        if self.lab.tracing is not None and service in self.lab.tracing.services:
            address = self.backend.otlp_address(self._otlp_port)
            env.update(tracing_env(service, f"http://{address}"))
        if self.lab.metrics is not None and service in self.lab.metrics.readers:
            # Straight to Prometheus, as its scrapes are: a fault on a link blinds nobody.
            address = self.backend.prometheus_address(self._prometheus_port)
            env["PROMETHEUS_URL"] = f"http://{address}"
        if self.lab.postgres is not None and service in self.lab.postgres.users:
            # Straight to the database: a lab about the schema, not about the network.
            env["DATABASE_URL"] = postgres_url(self.backend.postgres_address(self._postgres_port))
        env.update(spec.env)
        env.update(self.secrets_for(service))
        # Python services get the crash-point hook on their path (inert until a check arms it),
        # and write the requests they serve beside their log, for `chaoslab logs`.
        env.update(service_env(self.run.dir, service, spec.env.get("PYTHONPATH", "")))
        (self.run.dir / "logs").mkdir(parents=True, exist_ok=True)
        env["CHAOSLAB_REQUEST_LOG"] = str(self.run.dir / "logs" / f"{service}.requests.log")
        env["CHAOSLAB_UTC_OFFSET"] = str(time.localtime().tm_gmtoff)
        return env

    def secrets_for(self, service: str) -> dict[str, str]:
        """The run's `[secrets]` this service gets: made on first use, the same for every
        holder and every restart of this environment, new for the next one."""
        for name in self.lab.secrets:
            self.secrets.setdefault(name, token_urlsafe(24))
        return {
            name: self.secrets[name]
            for name, holders in self.lab.secrets.items()
            if service in holders
        }

    def wait_ready(self, service: str) -> float:
        ready = TAP_READY if service == TAP else self.lab.services[service].ready
        return wait_ready(self.backend.handle(service), ready)

    @contextmanager
    def redirected(self, link: Link, service: str) -> Iterator[None]:
        """For a while, `link`'s proxy takes its callers to `service` instead of its target:
        an impostor answering where the real service should. Toxiproxy closes the link's open
        connections at each switch."""
        if service not in self.lab.services:
            raise ValueError(f"lab '{self.lab.slug}' has no service '{service}'")
        address = self.backend.upstream(service, self._service_ports[service])
        self.toxiproxy.set_upstream(link.name, address)
        try:
            yield
        finally:
            self.toxiproxy.set_upstream(link.name, self._upstream(link))

    def _upstream(self, link: Link) -> str:
        """Where `link`'s proxy sends its callers: the service, or the wire tap before it."""
        if link.tap:
            return self.backend.upstream(TAP, self._tap_ports[link])
        return self._service_address(link)

    def _service_address(self, link: Link) -> str:
        """Where the Toxiproxy server (or the tap, beside it) reaches `link`'s target."""
        return self.backend.upstream(link.target, self._service_ports[link.target])

    def tapped(self, link: Link) -> list[tuple[bytes, bytes]]:
        """What crossed a tapped link so far, per connection: (caller's bytes, service's)."""
        if self.run is None:
            raise RuntimeError(f"lab '{self.lab.slug}' is not running")
        if link not in self._tap_ports:
            raise ValueError(f"link '{link}' has no tap: declare it {{ tap = true }} in lab.toml")
        return recorded(self.run.dir / "state" / TAP, link.name)

    def _tls_dir(self, service: str) -> Path:
        assert self.run is not None
        return self.run.dir / "state" / service / "tls"

    def _start_tap(self) -> None:
        """The wire tap of the tapped links: a service of the harness's, on the backend."""
        assert self.run is not None
        assert self._backend is not None
        state = self.run.dir / "state" / TAP
        state.mkdir(parents=True, exist_ok=True)
        routes = {
            link.name: {"port": port, "upstream": self._service_address(link)}
            for link, port in self._tap_ports.items()
        }
        port = next(iter(self._tap_ports.values()))
        env = {**self._process_env(TAP, port, state), "TAP_ROUTES": json.dumps(routes)}
        spec = ServiceSpec(name=TAP, command=("python", "-m", "harness.tap"), ready=TAP_READY)
        self._backend.start_service(spec, env, port)

    def _process_env(self, name: str, port: int, state: Path) -> dict[str, str]:
        """What every process of a run gets, a lab's service or the harness's own."""
        return {
            "PATH": _path_env(),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": str(Path.home()),
            "SERVICE_NAME": name,
            "HOST": self.backend.listen_host,
            "PORT": str(port),
            "STATE_DIR": str(state),
        }

    def reset(self) -> None:
        """Back to a clean slate between checks: no toxic, every service running and ready."""
        self.toxiproxy.reset()
        for name in sorted(self.http_faulted):
            if self.backend.handle(name).exit_code() is None and not self.backend.is_paused(name):
                HttpControl(self, name).clear()
        self.http_faulted.clear()
        for name in self.lab.services:
            if self.backend.is_paused(name):
                self.backend.resume(name)
            if self.backend.handle(name).exit_code() is not None:
                self.backend.restart(name)
                try:
                    self.wait_ready(name)
                except PortInUse:
                    raise
                except ServiceNotReady as exc:
                    if self.lab.learner_owns(name):
                        raise LearnerServiceDown(name, exc) from exc
                    raise

    # -- internals -------------------------------------------------------------------------
    def _prometheus_program(self) -> Prometheus | None:
        """The Prometheus this lab needs, fetched (or built) before anything starts."""
        if self.lab.metrics is None:
            return None
        found = find_prometheus()
        if found is None:
            print("chaoslab: fetching Prometheus, once for this machine...", file=sys.stderr)
            found = install_prometheus()
        return found

    def _jaeger_program(self) -> Jaeger | None:
        """The Jaeger this lab needs, built (once per machine) before anything starts."""
        if self.lab.tracing is None:
            return None
        return find_jaeger() or install_jaeger()

    def _start_jaeger(self, program: Jaeger, otlp_port: int, query_port: int) -> None:
        """Its configuration in the run's folder, then the server, started by the backend."""
        assert self.run is not None
        folder = self.run.dir / "jaeger"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yaml"
        config.write_text(render_jaeger(self.backend.listen_host, otlp_port, query_port))
        self._otlp_port = otlp_port
        self._jaeger = JaegerClient(
            self.backend.start_jaeger(program, config, otlp_port, query_port)
        )

    def _start_prometheus(self, program: Prometheus, port: int, harness_port: int) -> None:
        """Its folder (configuration, the rule files promtool accepts, storage), then the
        server, started by the backend (a child process, or a container on the run network).
        The harness's own metrics go beside the services', where the backend lets them."""
        spec = self.lab.metrics
        assert spec is not None
        assert self.run is not None
        assert self.workdir is not None
        folder = self.run.dir / "prometheus"
        (folder / "rules").mkdir(parents=True, exist_ok=True)
        targets = {
            name: self.backend.scrape_address(name, self._service_ports[name])
            for name in spec.scrape
        }
        rules = []
        self.rule_problems = {}
        for n, rel in enumerate(spec.rules):
            problem = check_rules(program, self.workdir / rel)
            if problem is None:
                # A copy beside the configuration, named relative to it: the same paths on
                # every backend. (The learner's file is read once, at the start.)
                copy = Path("rules") / f"{n}-{Path(rel).name}"
                shutil.copyfile(self.workdir / rel, folder / copy)
                rules.append(copy)
            else:  # left out: Prometheus would refuse to start, and the checks say why
                self.rule_problems[rel] = problem
        harness = self._start_harness_metrics(harness_port)
        config = render(spec, targets, rules, self.run.id, harness)
        (folder / "prometheus.yml").write_text(config)
        self._prometheus_port = port
        url = self.backend.start_prometheus(program, folder, port)
        self._prometheus_program_used = program
        self._prometheus = PrometheusClient(url)

    def _start_harness_metrics(self, port: int) -> str | None:
        """Serve the harness's metrics where the run's Prometheus can scrape them; their
        address, or None where it cannot reach this machine."""
        host = self.backend.harness_address()
        if host is None:
            return None
        by_port = {
            port_: link.target for link, port_ in self._proxy_ports.items() if link.source == CHECKS
        }
        try:
            self.harness_metrics = HarnessExporter(self.lab.slug, by_port).start(host, port)
        except OSError as exc:  # taken since it was chosen: start again on other ports
            raise PortInUse(
                f"the harness's metrics could not listen on {port}: {exc}", port
            ) from exc
        return f"{host}:{port}"

    def _prepare_workdir(self, run: Run) -> Path:
        if not self.solution and self.variant is None:
            return self.lab.root
        # Exercism's way: the reference solution (or a variant) overlaid on the starter, in a
        # temp copy; the learner's own files are never touched.
        copy = run.dir / "lab"
        shutil.copytree(
            self.lab.root,
            copy,
            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "wrong", "also-correct"),
        )
        if self.solution:
            shutil.copytree(self.lab.solution_dir, copy / "services", dirs_exist_ok=True)
        if self.variant is not None:
            overlay(self.lab, self.variant, copy / "services")
        return copy

    def _wait_all_ready(self, services: list[str]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            for future in [pool.submit(self.wait_ready, name) for name in services]:
                future.result()

    def _keep_logs(self, run: Run) -> None:
        logs = run.dir / "logs"
        if not logs.is_dir():
            return
        keep = logs_dir(self.lab.slug)
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(logs, keep, dirs_exist_ok=True)


PORT_ATTEMPTS = 3


def _port_conflict(error: Exception) -> bool:
    text = str(error).lower()
    return (
        isinstance(error, PortInUse)
        or "address already in use" in text
        or ("another program answers" in text)
    )


LOGS_ENV = "CHAOSLAB_LOGS"


def logs_dir(slug: str) -> Path:
    """Where the logs of a lab's last run are kept for the learner to read. CHAOSLAB_LOGS moves
    them: a proof running many runs of a lab at once keeps each run's logs apart there."""
    override = os.environ.get(LOGS_ENV)
    return (Path(override) if override else cache_root() / "logs") / slug


def _path_env() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@contextmanager
def running(
    lab: Lab,
    *,
    solution: bool = False,
    seed: int = 0,
    backend: str = "process",
    variant: Path | None = None,
) -> Iterator[LabEnvironment]:
    """Run `lab` for the duration of the block."""
    with LabEnvironment(
        lab, solution=solution, seed=seed, backend_name=backend, variant=variant
    ) as env:
        yield env
