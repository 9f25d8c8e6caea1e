"""A companion of a run (Prometheus, Jaeger) as a child process: started labelled with the
run (so the reaper takes it if the harness dies), waited for until it answers, and told apart
from another run's program that took its port meanwhile (then PortInUse: the environment
starts the run again on new ports)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness._errors import PortInUse, RunError
from harness.ports import listener_is
from harness.processes import ChildProcess

Gone = Callable[[], str | None]


def start_companion(
    what: str,
    argv: list[str],
    *,
    run_id: str,
    log: Path,
    port: int,
    wait: Callable[[Gone], None],
    user: tuple[int, int] | None = None,
) -> ChildProcess:
    """Start `argv` as `what`, then `wait(gone)` until it answers on `port`; the process, or
    an error that says why (its last lines), the process stopped."""
    process = ChildProcess(what.lower(), argv, run_id=run_id, log=log, user=user).start()

    def gone() -> str | None:
        code = process.exit_code()
        if code is None:
            return None
        return f"{argv[0]} exited with {code}; its last lines:\n{process.log_tail(10)}"

    try:
        wait(gone)
    except RunError as exc:
        process.kill()
        if "address already in use" in str(exc).lower():  # taken since it was chosen
            raise PortInUse(str(exc), port) from exc
        raise
    if listener_is(process.pid or 0, port) is False:
        process.kill()
        raise PortInUse(f"another program answers on {what}'s port {port}", port)
    return process
