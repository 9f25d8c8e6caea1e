"""A Prometheus server for one run, as a child process: its folder (prometheus.yml, the rule
files, the storage) prepared by the environment, its own port, labelled with the run (so the
reaper takes it if the harness dies), stopped with the run. The docker backend runs the same
command in a container (harness.backends.docker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness._errors import PortInUse, RunError
from harness.metrics.client import PrometheusClient
from harness.metrics.program import Prometheus
from harness.ports import HOST, free_ports, listener_is
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
        argv = command(self.program, self.folder, f"{HOST}:{self.port}")
        self._process = ChildProcess("prometheus", argv, run_id=self.run_id, log=self.log).start()
        process = self._process

        def gone() -> str | None:
            code = process.exit_code()
            if code is None:
                return None
            return (
                f"{self.program.server} exited with {code}; its last lines:\n{process.log_tail(10)}"
            )

        try:
            wait_ready(self.url, gone)
        except RunError as exc:
            self.stop()
            if "address already in use" in str(exc).lower():  # taken since it was chosen
                raise PortInUse(str(exc), self.port) from exc
            raise
        if listener_is(process.pid or 0, self.port) is False:
            self.stop()
            raise PortInUse(f"another program answers on Prometheus's port {self.port}", self.port)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None
