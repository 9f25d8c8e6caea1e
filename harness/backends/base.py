"""What every backend offers the environment: start services, and crash, pause or restart them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.lab import ServiceSpec
from harness.metrics.program import Prometheus
from harness.postgres.program import Postgres
from harness.toxiproxy import ToxiproxyClient
from harness.tracing.program import Jaeger


@dataclass(frozen=True)
class Stopped:
    """How a service ended when asked to stop (SIGTERM): its exit code, whether it had to be
    killed because it outlived its grace period, and how long it took."""

    code: int | None
    killed: bool
    took: float


class ServiceHandle(Protocol):
    """A running service, as readiness waits and error messages see it."""

    name: str

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def exit_code(self) -> int | None: ...

    def log_tail(self, lines: int = 20) -> str: ...

    def log_lines(self) -> list[str]:
        """Every line the service has written so far, as it wrote it (no time stamp)."""


class Backend(Protocol):
    """Runs a lab's topology; the environment decides what runs, the backend decides how."""

    name: str
    listen_host: str  # what a service binds to: 127.0.0.1 for processes, 0.0.0.0 in a container

    def start_toxiproxy(self, seed: int, published: Sequence[int] = ()) -> ToxiproxyClient:
        """Start the run's Toxiproxy server and return a client for its API.

        `published`: the proxy ports the checks use, which a container backend publishes on
        the host."""

    def proxy_listen(self, port: int) -> str:
        """The address a proxy listens on, as the Toxiproxy server sees it."""

    def proxy_address(self, port: int, *, from_checks: bool) -> str:
        """host:port at which a service (or the checks) reaches the proxy on `port`."""

    def upstream(self, service: str, port: int) -> str:
        """host:port at which the Toxiproxy server reaches `service`."""

    def start_prometheus(self, program: Prometheus, folder: Path, port: int) -> str:
        """Start the run's Prometheus with the configuration in `folder` (which it also keeps
        its storage in), reachable from the checks on `port`; its URL, once it is ready."""

    def scrape_address(self, service: str, port: int) -> str:
        """host:port at which the run's Prometheus reaches `service` (never through a proxy)."""

    def prometheus_address(self, port: int) -> str:
        """host:port at which a service reaches the run's Prometheus (started on `port`)."""

    def start_jaeger(self, program: Jaeger, config: Path, otlp_port: int, query_port: int) -> str:
        """Start the run's Jaeger with the configuration file `config` (OTLP in on `otlp_port`,
        its query API on `query_port`, which the checks reach); its query URL, once ready."""

    def otlp_address(self, otlp_port: int) -> str:
        """host:port at which a service sends its spans to the run's Jaeger."""

    def start_postgres(self, program: Postgres, port: int) -> str:
        """Start the run's PostgreSQL (a copy of the cached template as its data), reachable
        from the checks on `port`; host:port for the checks, once it accepts connections."""

    def postgres_address(self, port: int) -> str:
        """host:port at which a service reaches the run's PostgreSQL (never through a proxy)."""

    def postgres_log(self) -> list[str]:
        """What the run's PostgreSQL has logged so far, a line each."""

    def harness_address(self) -> str | None:
        """The address of this machine at which the run's Prometheus reaches a server of the
        harness (its own metrics), or None where it cannot."""

    def start_service(self, spec: ServiceSpec, env: Mapping[str, str], port: int) -> ServiceHandle:
        """Start a service (not waiting for readiness)."""

    def direct_address(self, service: str, port: int) -> str:
        """host:port at which the checks reach `service` without any proxy."""

    def crash(self, service: str) -> None:
        """Kill the service at once (SIGKILL / container kill)."""

    def pause(self, service: str) -> None: ...

    def resume(self, service: str) -> None: ...

    def terminate(self, service: str, grace: float) -> Stopped:
        """Ask the service to stop (SIGTERM, as an orchestrator does) and wait for it to exit;
        SIGKILL it if it is still running after `grace` seconds."""

    def restart(self, service: str, env: Mapping[str, str] | None = None) -> ServiceHandle:
        """Start a stopped or crashed service again with the same port and environment, or
        with `env` changed (a new release: the same service, deployed with RELEASE=2)."""

    def handle(self, service: str) -> ServiceHandle: ...

    def is_paused(self, service: str) -> bool: ...

    def close(self) -> None:
        """Stop everything; safe to call twice."""
