"""A Jaeger for one run, as a child process: its configuration in the run's folder, its own
ports, labelled with the run (so the reaper takes it if the harness dies), stopped with the
run. The docker backend runs the same command in a container (harness.backends.docker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.companion import start_companion
from harness.ports import HOST
from harness.processes import ChildProcess
from harness.readiness import wait_answering
from harness.tracing.client import JaegerClient
from harness.tracing.program import Jaeger

START_WITHIN = 20.0  # seconds for Jaeger's query API to answer


def command(program: Jaeger, config: Path) -> list[str]:
    return [str(program.binary), "--config", f"file:{config}"]


def wait_ready(url: str, gone: Callable[[], str | None], timeout: float = START_WITHIN) -> None:
    """Until Jaeger's query API at `url` answers; a RunError if `gone()` says why it never
    will, or after `timeout`."""
    client = JaegerClient(url)
    try:
        wait_answering("Jaeger", url, client.ready, gone, timeout)
    finally:
        client.close()


class JaegerServer:
    def __init__(self, program: Jaeger, run_id: str, config: Path, log: Path) -> None:
        self.program = program
        self.run_id = run_id
        self.config = config
        self.log = log
        self._process: ChildProcess | None = None

    def start(self, query_port: int) -> str:
        """Start it; the query API's URL once it answers."""
        url = f"http://{HOST}:{query_port}"
        self._process = start_companion(
            "Jaeger",
            command(self.program, self.config),
            run_id=self.run_id,
            log=self.log,
            port=query_port,
            wait=lambda gone: wait_ready(url, gone),
        )
        return url

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None
