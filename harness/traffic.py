"""Concurrent clients that drive a workload and record every operation in a History.

A workload is a function `(client) -> None` that performs operations through `client.op(...)`;
the harness calls it in a loop on each client thread until the time or the count runs out.
All randomness comes from `client.rng`, seeded from the run's seed and the client's number.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.history import History, Operation, Status
from harness.metrics.harness_exporter import observed_transport


class OpRecorder:
    """Handed to a workload inside `client.op()`: say how the operation ended."""

    def __init__(self, history: History, op: Operation) -> None:
        self.history = history
        self.op = op
        self.done = False

    def ok(self, result: Any = None) -> None:
        self._end("ok", result)

    def fail(self, error: str, result: Any = None) -> None:
        self._end("fail", result, error)

    def unknown(self, error: str, result: Any = None) -> None:
        self._end("unknown", result, error)

    def _end(self, status: Status, result: Any = None, error: str | None = None) -> None:
        if not self.done:
            self.history.complete(self.op, status, result, error)
            self.done = True


@dataclass
class Client:
    """One simulated client: a number, its own seeded random source, an HTTP client."""

    id: int
    rng: random.Random
    history: History
    http: httpx.Client
    stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def op(self, f: str, value: Any = None) -> Iterator[OpRecorder]:
        """Record one operation; an exception the block does not handle ends it.

        A refused connection ends it `fail` (the request never left); any other transport
        error (timeout, reset, cut-off response) ends it `unknown`, as it may have happened.
        """
        recorder = OpRecorder(self.history, self.history.invoke(self.id, f, value))
        try:
            yield recorder
        except httpx.ConnectError as exc:
            recorder.fail(f"connection refused ({type(exc).__name__})")
        except httpx.TransportError as exc:
            recorder.unknown(_describe(exc))
        except BaseException as exc:
            recorder.unknown(f"{type(exc).__name__}: {exc}")
            raise
        else:
            if not recorder.done:
                recorder.ok()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the run is stopping; False when it is."""
        return not self.stop.wait(seconds)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"connection dropped ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


Workload = Callable[[Client], None]


class TrafficRun:
    """Clients running in background threads; `stop()` ends them and returns the history."""

    def __init__(
        self,
        workload: Workload,
        *,
        clients: int,
        seed: int,
        history: History,
        duration: float | None,
        iterations: int | None,
        timeout: float,
    ) -> None:
        self.history = history
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(
                target=self._loop,
                args=(workload, i, seed, timeout, duration, iterations),
                name=f"chaoslab-client-{i}",
                daemon=True,
            )
            for i in range(clients)
        ]

    def _client(self, number: int, seed: int, timeout: float) -> Client:
        return Client(
            id=number,
            rng=random.Random(f"{seed}:{number}"),
            history=self.history,
            http=httpx.Client(timeout=timeout, trust_env=False, transport=observed_transport()),
            stop=self._stop,
        )

    def _loop(
        self,
        workload: Workload,
        number: int,
        seed: int,
        timeout: float,
        duration: float | None,
        iterations: int | None,
    ) -> None:
        # Each thread builds its own HTTP client: built up front, one after the other, they
        # delayed the first requests by up to half a second on a loaded machine.
        client = self._client(number, seed, timeout)
        deadline = None if duration is None else time.monotonic() + duration
        done = 0
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if iterations is not None and done >= iterations:
                    break
                workload(client)
                done += 1
        except BaseException as exc:  # a bug in the workload must not vanish in a thread
            self._errors.append(exc)
            self._stop.set()  # and must not wait for the other clients' full duration
        finally:
            client.http.close()

    def start(self) -> TrafficRun:
        for thread in self._threads:
            thread.start()
        return self

    def wait(self, timeout: float | None = None) -> History:
        """Wait for the clients to finish on their own (duration or iterations)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        if any(t.is_alive() for t in self._threads):
            self.stop()
        if self._errors:
            raise self._errors[0]
        return self.history

    def stop(self, grace: float = 30.0) -> History:
        """Ask the clients to stop after their current operation, and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(grace)
        if self._errors:
            raise self._errors[0]
        return self.history

    def __enter__(self) -> TrafficRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30.0)


class Traffic:
    """Drives workloads against a running lab, seeded from the run's seed."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.history = History()

    def run(
        self,
        workload: Workload,
        *,
        clients: int = 4,
        duration: float | None = None,
        iterations: int | None = None,
        timeout: float = 5.0,
    ) -> History:
        """Run the clients to completion in the foreground."""
        return self.start(
            workload, clients=clients, duration=duration, iterations=iterations, timeout=timeout
        ).wait()

    def start(
        self,
        workload: Workload,
        *,
        clients: int = 4,
        duration: float | None = None,
        iterations: int | None = None,
        timeout: float = 5.0,
    ) -> TrafficRun:
        """Start the clients in the background (faults go in the foreground meanwhile)."""
        if duration is None and iterations is None:
            duration = 60.0  # a bound, so a forgotten stop() cannot hang a check
        return TrafficRun(
            workload,
            clients=clients,
            seed=self.seed,
            history=self.history,
            duration=duration,
            iterations=iterations,
            timeout=timeout,
        ).start()
