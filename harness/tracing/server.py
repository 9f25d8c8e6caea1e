"""A Jaeger for one run, as a child process: its configuration in the run's folder, its own
ports, labelled with the run (so the reaper takes it if the harness dies), stopped with the
run. The docker backend runs the same command in a container (harness.backends.docker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness._errors import PortInUse, RunError
from harness.ports import HOST, listener_is
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
        argv = command(self.program, self.config)
        self._process = ChildProcess("jaeger", argv, run_id=self.run_id, log=self.log).start()
        process = self._process

        def gone() -> str | None:
            code = process.exit_code()
            if code is None:
                return None
            return (
                f"{self.program.binary} exited with {code}; its last lines:\n{process.log_tail(10)}"
            )

        url = f"http://{HOST}:{query_port}"
        try:
            wait_ready(url, gone)
        except RunError as exc:
            self.stop()
            if "address already in use" in str(exc).lower():  # taken since it was chosen
                raise PortInUse(str(exc), query_port) from exc
            raise
        if listener_is(process.pid or 0, query_port) is False:
            self.stop()
            raise PortInUse(f"another program answers on Jaeger's port {query_port}", query_port)
        return url

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None
