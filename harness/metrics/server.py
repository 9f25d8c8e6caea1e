"""A Prometheus server for one run, as a child process: its folder (prometheus.yml, the rule
files, the storage) prepared by the environment, its own port, labelled with the run (so the
reaper takes it if the harness dies), stopped with the run. The docker backend runs the same
command in a container (harness.backends.docker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.companion import start_companion
from harness.metrics.client import PrometheusClient
from harness.metrics.program import Prometheus
from harness.ports import HOST, free_ports
from harness.processes import ChildProcess
from harness.readiness import wait_answering

START_WITHIN = 20.0  # seconds for Prometheus to answer /-/ready


def command(program: Prometheus, folder: Path, listen: str) -> list[str]:
    """The server's command line: configuration and storage in `folder`, listening on
    `listen` (host:port); rule files are named relative to the configuration."""
    return [
        str(program.server),
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]


def wait_ready(url: str, gone: Callable[[], str | None], timeout: float = START_WITHIN) -> None:
    """Until Prometheus at `url` is ready; a RunError if `gone()` says why it never will be,
    or after `timeout`."""
    client = PrometheusClient(url)
    try:
        wait_answering("Prometheus", url, client.ready, gone, timeout)
    finally:
        client.close()


class PrometheusServer:
    def __init__(self, program: Prometheus, run_id: str, folder: Path, log: Path) -> None:
        self.program = program
        self.run_id = run_id
        self.folder = folder
        self.log = log
        self.port = 0
        self._process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, port: int | None = None) -> PrometheusServer:
        self.port = port or free_ports(1)[0]
        self._process = start_companion(
            "Prometheus",
            command(self.program, self.folder, f"{HOST}:{self.port}"),
            run_id=self.run_id,
            log=self.log,
            port=self.port,
            wait=lambda gone: wait_ready(self.url, gone),
        )
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None
