"""A Prometheus server for one run: its own port, configuration and storage in the run's
folder, a child process of the harness like Toxiproxy (labelled with the run, so the reaper
takes it if the harness dies), stopped with the run."""

from __future__ import annotations

import time
from pathlib import Path

from harness._errors import RunError
from harness.metrics.client import PrometheusClient
from harness.metrics.program import Prometheus
from harness.ports import HOST, free_ports, listener_is
from harness.processes import ChildProcess


class PrometheusServer:
    def __init__(self, program: Prometheus, run_id: str, folder: Path, log: Path) -> None:
        self.program = program
        self.run_id = run_id
        self.folder = folder  # holds prometheus.yml and the storage
        self.log = log
        self.port = 0
        self._process: ChildProcess | None = None
        self._client: PrometheusClient | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def client(self) -> PrometheusClient:
        if self._client is None:
            raise RunError("the run's Prometheus is not started")
        return self._client

    def start(
        self, config: str, port: int | None = None, timeout: float = 20.0
    ) -> PrometheusServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "prometheus.yml"
        config_file.write_text(config)
        self.port = port or free_ports(1)[0]
        argv = [
            str(self.program.server),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        self._process = ChildProcess("prometheus", argv, run_id=self.run_id, log=self.log).start()
        self._client = PrometheusClient(self.url)
        deadline = time.monotonic() + timeout
        while not self._client.ready():
            code = self._process.exit_code()
            if code is not None or time.monotonic() > deadline:
                tail = self._process.log_tail(10)
                self.stop()
                raise RunError(
                    f"Prometheus ({self.program.server}) did not start on port {self.port} "
                    f"(exit code {code}).\n  Last log lines:\n{tail}"
                )
            time.sleep(0.05)
        if listener_is(self._process.pid or 0, self.port) is False:
            self.stop()
            raise RunError(f"another program answers on Prometheus's port {self.port}")
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None:
            self._process.kill()
            self._process = None
