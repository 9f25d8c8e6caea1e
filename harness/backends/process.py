"""The embedded default: every service a local child process on 127.0.0.1, no Docker needed."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.backends.base import Stopped
from harness.lab import ServiceSpec
from harness.metrics.program import Prometheus
from harness.metrics.server import PrometheusServer
from harness.ports import HOST, listener_in_group
from harness.postgres.program import Postgres
from harness.postgres.server import PostgresServer
from harness.processes import ChildProcess
from harness.runs import Run
from harness.toxiproxy import ToxiproxyClient, ToxiproxyServer
from harness.tracing.program import Jaeger
from harness.tracing.server import JaegerServer

STOP_GRACE = 1.0  # seconds the services of a run get to exit on SIGTERM, together


class ProcessService(ChildProcess):
    """A lab service as a child process; `python` in its command is this interpreter."""

    def __init__(
        self, spec: ServiceSpec, port: int, *, run: Run, cwd: Path, env: Mapping[str, str]
    ):
        argv = [sys.executable if a in ("python", "python3") else a for a in spec.command]
        super().__init__(
            spec.name,
            argv,
            run_id=run.id,
            log=run.dir / "logs" / f"{spec.name}.log",
            cwd=cwd,
            env=env,
        )
        self.spec = spec
        self._port = port
        self.paused = False

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    def owns_port(self) -> bool | None:
        """Whether what answers on the service's port is the service (a process of its group),
        not another run's program that took the port first; None: cannot tell."""
        if self.pid is None:
            return None
        return listener_in_group(self.pid, self._port)  # its own group: start_new_session


class ProcessBackend:
    """Runs services as process groups; crash is SIGKILL, pause is SIGSTOP."""

    name = "process"
    listen_host = HOST

    def __init__(self, run: Run, workdir: Path) -> None:
        self.run = run
        self.workdir = workdir
        self._services: dict[str, ProcessService] = {}
        self._toxiproxy: ToxiproxyServer | None = None
        self._prometheus: PrometheusServer | None = None
        self._jaeger: JaegerServer | None = None
        self._postgres: PostgresServer | None = None

    def start_toxiproxy(self, seed: int, published: Sequence[int] = ()) -> ToxiproxyClient:
        server = ToxiproxyServer(self.run.id, self.run.dir / "logs" / "toxiproxy.log", seed)
        self._toxiproxy = server
        return server.start().client

    def proxy_listen(self, port: int) -> str:
        return f"{HOST}:{port}"

    def start_prometheus(self, program: Prometheus, folder: Path, port: int) -> str:
        server = PrometheusServer(
            program, self.run.id, folder, self.run.dir / "logs" / "prometheus.log"
        )
        self._prometheus = server
        return server.start(port).url

    def scrape_address(self, service: str, port: int) -> str:
        return f"{HOST}:{port}"

    def prometheus_address(self, port: int) -> str:
        return f"{HOST}:{port}"

    def start_jaeger(self, program: Jaeger, config: Path, otlp_port: int, query_port: int) -> str:
        server = JaegerServer(program, self.run.id, config, self.run.dir / "logs" / "jaeger.log")
        self._jaeger = server
        return server.start(query_port)

    def otlp_address(self, otlp_port: int) -> str:
        return f"{HOST}:{otlp_port}"

    def start_postgres(self, program: Postgres, port: int) -> str:
        server = PostgresServer(
            program, self.run.id, self.run.dir / "postgres", self.run.dir / "logs" / "postgres.log"
        )
        self._postgres = server
        return server.start(port)

    def postgres_address(self, port: int) -> str:
        return f"{HOST}:{port}"

    def postgres_log(self) -> list[str]:
        return self._postgres.log_lines() if self._postgres is not None else []

    def harness_address(self) -> str | None:
        return HOST

    def proxy_address(self, port: int, *, from_checks: bool) -> str:
        return f"{HOST}:{port}"

    def upstream(self, service: str, port: int) -> str:
        return f"{HOST}:{port}"

    def direct_address(self, service: str, port: int) -> str:
        return f"{HOST}:{port}"

    def start_service(self, spec: ServiceSpec, env: Mapping[str, str], port: int) -> ProcessService:
        service = ProcessService(spec, port, run=self.run, cwd=self.workdir, env=env)
        self._services[spec.name] = service
        return service.start()  # type: ignore[return-value]

    def handle(self, service: str) -> ProcessService:
        return self._services[service]

    def crash(self, service: str) -> None:
        handle = self._services[service]
        handle.kill()
        handle.paused = False

    def pause(self, service: str) -> None:
        handle = self._services[service]
        handle.signal(signal.SIGSTOP)
        handle.paused = True

    def resume(self, service: str) -> None:
        handle = self._services[service]
        handle.signal(signal.SIGCONT)
        handle.paused = False

    def is_paused(self, service: str) -> bool:
        return self._services[service].paused

    def terminate(self, service: str, grace: float) -> Stopped:
        handle = self._services[service]
        began = time.monotonic()
        killed = handle.stop(grace)
        handle.paused = False
        return Stopped(handle.exit_code(), killed, time.monotonic() - began)

    def restart(self, service: str, env: Mapping[str, str] | None = None) -> ProcessService:
        old = self._services[service]
        old.kill()
        changed = {**old.env, **(env or {})}
        fresh = ProcessService(old.spec, old.port, run=self.run, cwd=self.workdir, env=changed)
        self._services[service] = fresh
        fresh.start()
        return fresh

    def close(self) -> None:
        if self._prometheus is not None:
            self._prometheus.stop()
            self._prometheus = None
        if self._jaeger is not None:
            self._jaeger.stop()
            self._jaeger = None
        # All at once: each service takes a few hundred ms to shut down, and they need not
        # wait for one another. SIGTERM to every group, one shared grace, then SIGKILL.
        services = list(self._services.values())
        for service in services:
            service.signal(signal.SIGCONT)
            service.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for service in services:
            service.stop(grace=max(0.0, deadline - time.monotonic()))
        if self._postgres is not None:  # after its users: they close their connections first
            self._postgres.stop()
            self._postgres = None
        if self._toxiproxy is not None:
            self._toxiproxy.stop()
            self._toxiproxy = None
