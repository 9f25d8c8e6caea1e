"""Faults a check asks for, as context managers that always heal, even when the body raises.

Network faults are Toxiproxy toxics on a link's proxy; process faults go through the backend.
Every fault is written to a timeline, so that a failed check can say during which fault it
failed.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx

from harness import recording
from harness._errors import RunError
from harness.backends.base import Stopped
from harness.crashpoints import CrashPoint, revert_to_durable
from harness.lab import Link
from harness.service_kit import CONTROL
from harness.toxiproxy import Stream, Toxic

if TYPE_CHECKING:
    from harness.environment import LabEnvironment

LinkRef = str | tuple[str, str] | Link


@dataclass
class FaultEvent:
    """One fault on the timeline: what, and when (monotonic seconds), `end` None while active."""

    description: str
    start: float
    end: float | None = None

    def overlaps(self, start: float, end: float) -> bool:
        return self.start <= end and (self.end is None or self.end >= start)

    def __str__(self) -> str:
        return self.description


@dataclass
class Timeline:
    """Every fault injected during a check, in order; thread-safe."""

    events: list[FaultEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        recording.track_timeline(self)

    def open(self, description: str, clock: Callable[[], float] = time.monotonic) -> FaultEvent:
        event = FaultEvent(description, clock())
        with self._lock:
            self.events.append(event)
        return event

    def mark(self, description: str, clock: Callable[[], float] = time.monotonic) -> FaultEvent:
        """A fault that is over as it happens (a kill, a file torn while its service is down)."""
        event = self.open(description, clock)
        event.end = event.start
        return event

    def during(self, start: float, end: float) -> list[FaultEvent]:
        with self._lock:
            return [e for e in self.events if e.overlaps(start, end)]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


class Faults:
    """The fault API of a running lab. Each method is a context manager that heals on exit."""

    def __init__(self, env: LabEnvironment, clock: Callable[[], float] = time.monotonic) -> None:
        self.env = env
        self.clock = clock
        self.timeline = Timeline()
        self._ids = itertools.count(1)

    # -- network faults (Toxiproxy) ------------------------------------------------------
    def latency(
        self, link: LinkRef, ms: int, jitter: int = 0, stream: Stream = "downstream"
    ) -> _Heal:
        """Delay data on `link` by `ms` (+/- `jitter`) milliseconds."""
        jitter_text = f" +/- {jitter} ms" if jitter else ""
        return self._toxic(
            link,
            "latency",
            {"latency": ms, "jitter": jitter},
            stream,
            f"latency {ms} ms{jitter_text}",
        )

    def bandwidth(self, link: LinkRef, kb_per_s: int, stream: Stream = "downstream") -> _Heal:
        return self._toxic(
            link, "bandwidth", {"rate": kb_per_s}, stream, f"bandwidth {kb_per_s} KB/s"
        )

    def slow_close(self, link: LinkRef, ms: int, stream: Stream = "downstream") -> _Heal:
        return self._toxic(link, "slow_close", {"delay": ms}, stream, f"slow close {ms} ms")

    def timeout(self, link: LinkRef, ms: int = 0, stream: Stream = "downstream") -> _Heal:
        """Black hole: data stops; with `ms` > 0 the connection closes after `ms`."""
        what = "black hole" if ms == 0 else f"timeout after {ms} ms"
        return self._toxic(link, "timeout", {"timeout": ms}, stream, what)

    def reset(self, link: LinkRef, after_ms: int = 0, stream: Stream = "downstream") -> _Heal:
        """TCP RST once data flows on `stream` (downstream: after the request was processed)."""
        return self._toxic(link, "reset_peer", {"timeout": after_ms}, stream, "connection reset")

    def limit_data(self, link: LinkRef, nbytes: int, stream: Stream = "downstream") -> _Heal:
        return self._toxic(
            link, "limit_data", {"bytes": nbytes}, stream, f"close after {nbytes} bytes"
        )

    def toxic(
        self,
        link: LinkRef,
        type_: str,
        attributes: dict[str, int | float],
        stream: Stream = "downstream",
        toxicity: float = 1.0,
    ) -> _Heal:
        """Any Toxiproxy toxic, for what the named faults do not cover."""
        return self._toxic(link, type_, attributes, stream, type_, toxicity)

    def down(self, link: LinkRef) -> _Heal:
        """Disable the link's proxy: connections are refused and open ones dropped."""
        resolved = self._link(link)
        proxy = resolved.name

        def apply() -> None:
            self.env.toxiproxy.set_enabled(proxy, False)

        def heal() -> None:
            self.env.toxiproxy.set_enabled(proxy, True)

        return _Heal(self, f"link {resolved} down", apply, heal)

    def partition(
        self, side_a: Iterable[str], side_b: Iterable[str], *, one_way: bool = False
    ) -> _Heal:
        """Cut the links between two groups; one-way drops only what `side_a` sends to `side_b`.

        A dropped direction is a black hole (no RST), as on a real partition: requests go
        unanswered until the caller's own timeout.
        """
        group_a, group_b = set(side_a), set(side_b)
        toxics: list[tuple[str, str, Stream]] = []
        for link in self.env.lab.links:
            if link.source in group_a and link.target in group_b:
                toxics.append((link.name, f"{link.name}-up", "upstream"))
                if not one_way:
                    toxics.append((link.name, f"{link.name}-down", "downstream"))
            elif link.source in group_b and link.target in group_a:
                toxics.append((link.name, f"{link.name}-down", "downstream"))
                if not one_way:
                    toxics.append((link.name, f"{link.name}-up", "upstream"))
        if not toxics:
            raise ValueError(f"no link between {sorted(group_a)} and {sorted(group_b)}")
        tag = f"partition{next(self._ids)}"

        def apply() -> None:
            for proxy, name, stream in toxics:
                self.env.toxiproxy.add_toxic(
                    proxy, Toxic(f"{tag}-{name}", "timeout", stream, 1.0, {"timeout": 0})
                )

        def heal() -> None:
            for proxy, name, _ in toxics:
                self.env.toxiproxy.remove_toxic(proxy, f"{tag}-{name}")

        arrow = "-/->" if one_way else "<-/->"
        description = f"partition {sorted(group_a)} {arrow} {sorted(group_b)}"
        return _Heal(self, description, apply, heal)

    # -- HTTP faults (harness-owned services) ---------------------------------------------
    def http(
        self,
        service: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        share: float = 1.0,
        first: int | None = None,
        delay_ms: int = 0,
        response_delay_ms: int = 0,
        duplicate: bool = False,
        path: str = "/",
        method: str | None = None,
        nth: int | None = None,
        crash: Literal["before", "after"] | None = None,
        where: dict[str, str] | None = None,
    ) -> _Heal:
        """An HTTP fault in a harness-owned service: answer `status` (429 with `retry_after`),
        add `delay_ms` before the service sees the request or `response_delay_ms` after it
        handled it, or deliver a response twice (`duplicate`), for a `share` of the matching
        requests, for the `first` N of them or for the `nth` only; matching requests are those
        on `path` (and `method`), and, with `where`, whose JSON body has those fields (a value
        ending in `*` matches by prefix: `where={"call_id": "probe-*"}`). `crash` kills the whole
        service on a hit: "before" it handles the request, or "after" it did (its answer is
        never sent); it stays down until `restart` (or the reset between checks)."""
        self._service(service)
        if self.env.lab.learner_owns(service):
            raise ValueError(
                f"'{service}' is the learner's service; HTTP faults go only in "
                "services the harness owns (use a network fault instead)"
            )
        if crash not in (None, "before", "after"):
            raise ValueError(f"crash is 'before' or 'after', not {crash!r}")
        if nth is not None and nth < 1:
            raise ValueError(f"nth counts from 1, not {nth}")
        if (
            status is None
            and not delay_ms
            and not response_delay_ms
            and not duplicate
            and crash is None
        ):
            raise ValueError(
                "an HTTP fault needs a status, a delay_ms, a response_delay_ms, "
                "duplicate=True or a crash"
            )
        rule_id = f"http{next(self._ids)}"
        rule: dict[str, object] = {
            "id": rule_id,
            "path": path,
            "method": method,
            "share": share,
            "first": first,
            "status": status,
            "retry_after": retry_after,
            "delay_ms": delay_ms,
            "response_delay_ms": response_delay_ms,
            "duplicate": duplicate,
            "nth": nth,
            "crash": crash,
            "where": where,
        }
        parts = []
        if delay_ms:
            parts.append(f"+{delay_ms} ms")
        if response_delay_ms:
            parts.append(f"answer held {response_delay_ms} ms")
        if status is not None:
            parts.append(
                f"answer {status}" + (f" Retry-After {retry_after:g}" if retry_after else "")
            )
        if duplicate:
            parts.append("deliver twice")
        if crash is not None:
            parts.append(f"crash {crash} handling it")
        if nth is not None:
            which = f"request {nth} of"
        elif first is not None:
            which = f"first {first}"
        else:
            which = f"{share:.0%} of"
        fields = f" with {', '.join(f'{k}={v}' for k, v in where.items())}" if where else ""
        description = (
            f"HTTP {', '.join(parts)} for {which} {method or ''} {path}{fields} on {service}"
        )
        control = HttpControl(self.env, service)

        def heal() -> None:
            # A crashed service took its rules with it; there is nothing left to remove.
            if self.env.backend.handle(service).exit_code() is None:
                control.remove(rule_id)

        return _Heal(self, " ".join(description.split()), lambda: control.add(rule), heal)

    # -- process faults (backend) ---------------------------------------------------------
    def crash(self, service: str, *, restart: bool = True) -> _Heal:
        """SIGKILL (or container kill) now; on exit restart it and wait until it is ready."""
        self._service(service)

        def heal() -> None:
            if restart:
                self.restart(service)

        return _Heal(self, f"crash {service}", lambda: self.env.backend.crash(service), heal)

    def power_loss(self, service: str, *, restart: bool = True) -> _Heal:
        """Cut `service`'s power: SIGKILL it, then put back every file it wrote from Python
        under its STATE_DIR as it was at its last fsync (never synced: gone); on exit restart it
        and wait until it is ready. A kill -9 alone loses nothing the kernel already had; this
        is what tells an fsync from a flush. SQLite's own files are left as they are."""
        self._service(service)
        assert self.env.run is not None
        run_dir = self.env.run.dir

        def apply() -> None:
            self.env.backend.crash(service)
            lost = revert_to_durable(run_dir, service)
            if cut.event is not None:
                cut.event.description = f"power loss on {service}: {lost}"

        def heal() -> None:
            if restart:
                self.restart(service)

        cut = _Heal(self, f"power loss on {service}", apply, heal)
        return cut

    def kill(self, service: str) -> None:
        """Crash `service` and leave it down (the next `restart` or the reset brings it back)."""
        self._service(service)
        self.timeline.mark(f"crash {service}", self.clock)
        self.env.backend.crash(service)

    def restart(self, service: str) -> float:
        """Start `service` again (same port, same state folder); returns seconds to ready."""
        self._service(service)
        event = self.timeline.open(f"restart {service}", self.clock)
        try:
            self.env.backend.restart(service)
            return self.env.wait_ready(service)
        finally:
            event.end = self.clock()

    def rolling_restart(
        self,
        services: list[str],
        *,
        grace: float,
        env: Mapping[str, str] | None = None,
        soak: float = 0.0,
    ) -> list[tuple[str, Stopped]]:
        """Restart `services` one at a time, as a rolling deploy does: SIGTERM, up to `grace`
        seconds to exit (then SIGKILL), start again, wait until ready, then the next. Each
        service's stop is on the timeline as it went ("exited 0 in 0.31 s", "killed"). With
        `env`, each starts again with those variables changed: a deploy of a new release
        (`env={"RELEASE": "2"}`), while the ones not yet restarted still run the old one.
        `soak`: seconds each restarted service serves beside the ones not yet restarted before
        the next is stopped (an orchestrator's minimum ready time): old and new side by side."""
        stops = []
        what = (
            "deploy " + ", ".join(f"{k}={v}" for k, v in env.items()) if env else "rolling restart"
        )
        for service in services:
            self._service(service)
            event = self.timeline.open(f"{what}: {service} asked to stop", self.clock)
            try:
                stopped = self.env.backend.terminate(service, grace)
                how = (
                    f"killed after {grace:g} s of grace"
                    if stopped.killed
                    else f"exited {stopped.code} in {stopped.took:.2f} s"
                )
                event.description = f"{what}: {service} {how}, started again"
                stops.append((service, stopped))
                self.env.backend.restart(service, env)
                self.env.wait_ready(service)
            finally:
                event.end = self.clock()
            if soak and service != services[-1]:
                time.sleep(soak)
        return stops

    @contextmanager
    def crash_after_commit(self, service: str, nth: int = 1) -> Iterator[CrashPoint]:
        """Crash `service` (Python, sqlite3) right after its `nth` database commit from now.

        Yields the point: `point.wait()` blocks until the service died there. On exit the
        point is disarmed and, if the service died, it is restarted and waited ready."""
        with self._crash_point(service, nth, "commits") as point:
            yield point

    @contextmanager
    def crash_after_truncate(self, service: str, nth: int = 1) -> Iterator[CrashPoint]:
        """Crash `service` (Python) right after the `nth` time, from now, that it empties a file
        with data under its STATE_DIR by opening it for writing ("w", O_TRUNC): the first step
        of a rewrite in place, where a crash leaves the file torn. Writing a new file and
        renaming it over the old one never empties a file with data, so it never fires there.
        Used like `crash_after_commit`."""
        with self._crash_point(service, nth, "truncates") as point:
            yield point

    @contextmanager
    def _crash_point(self, service: str, nth: int, kind: str) -> Iterator[CrashPoint]:
        self._service(service)
        assert self.env.run is not None
        point = CrashPoint(
            self.env.run.dir,
            service,
            nth,
            died=lambda: self.env.backend.handle(service).exit_code() is not None,
            clock=self.clock,
            kind=kind,
        )
        event = self.timeline.open(point.description, self.clock)
        point.arm()
        try:
            yield point
        finally:
            point.disarm()
            if not point.fired:
                event.description += " (never reached: it did not happen)"
            event.end = self.clock()
            try:
                if point.fired and point.wait(timeout=5.0):
                    self.restart(service)
            finally:
                point.clear()

    def pause(self, service: str) -> _Heal:
        """SIGSTOP (or docker pause) the service; SIGCONT on exit."""
        self._service(service)
        return _Heal(
            self,
            f"pause {service}",
            lambda: self.env.backend.pause(service),
            lambda: self.env.backend.resume(service),
        )

    # -- helpers -------------------------------------------------------------------------
    def _toxic(
        self,
        link: LinkRef,
        type_: str,
        attributes: dict[str, int | float],
        stream: Stream,
        what: str,
        toxicity: float = 1.0,
    ) -> _Heal:
        resolved = self._link(link)
        name = f"{type_}-{stream}-{next(self._ids)}"
        toxic = Toxic(name, type_, stream, toxicity, attributes)
        description = f"{what} on {resolved} ({stream})"
        if toxicity < 1.0:
            description += f" for {toxicity:.0%} of connections"
        return _Heal(
            self,
            description,
            lambda: self.env.toxiproxy.add_toxic(resolved.name, toxic),
            lambda: self.env.toxiproxy.remove_toxic(resolved.name, name),
        )

    def _link(self, link: LinkRef) -> Link:
        if isinstance(link, Link):
            return link
        if isinstance(link, tuple):
            return self.env.lab.link(*link)
        source, _, target = link.partition("->")
        return self.env.lab.link(source.strip(), target.strip())

    def _service(self, service: str) -> None:
        if service not in self.env.lab.services:
            known = ", ".join(self.env.lab.services)
            raise ValueError(f"unknown service '{service}' (the lab has: {known})")


class HttpControl:
    """The control route of a harness-owned service (see harness.service_kit)."""

    def __init__(self, env: LabEnvironment, service: str, timeout: float = 5.0) -> None:
        self.env = env
        self.service = service
        self.timeout = timeout

    def _call(self, method: str, path: str, json: object = None) -> httpx.Response:
        url = f"{self.env.direct_url(self.service)}{CONTROL}{path}"
        try:
            response = httpx.request(method, url, json=json, timeout=self.timeout, trust_env=False)
        except httpx.HTTPError as exc:
            raise RunError(
                f"service '{self.service}' did not answer its control route: {exc!r}"
            ) from exc
        if response.status_code >= 400:
            raise RunError(
                f"service '{self.service}' refused {method} {CONTROL}{path} "
                f"({response.status_code}): {response.text[:200]}\n  Hint: HTTP faults need "
                "the service's app wrapped with harness.service_kit.with_chaos."
            )
        return response

    def add(self, rule: dict[str, object]) -> None:
        self._call("POST", "/faults", rule)
        self.env.http_faulted.add(self.service)

    def remove(self, rule_id: str) -> None:
        self._call("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        self._call("DELETE", "/faults")

    def received(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = self._call("GET", "/received").json()
        return data


class _Heal:
    """A fault that is applied on `__enter__` (or `.apply()`) and always healed on exit."""

    def __init__(
        self, faults: Faults, description: str, apply: Callable[[], None], heal: Callable[[], None]
    ) -> None:
        self.faults = faults
        self.description = description
        self._apply = apply
        self._heal = heal
        self.event: FaultEvent | None = None

    def __enter__(self) -> FaultEvent:
        self.event = self.faults.timeline.open(self.description, self.faults.clock)
        try:
            self._apply()
        except BaseException:
            # Half-applied: undo what can be undone; the original error is what matters.
            with contextlib.suppress(Exception):
                self._heal()
            self.event.end = self.faults.clock()
            raise
        self._show(active=True)
        return self.event

    def _show(self, *, active: bool) -> None:
        """On the harness's own metrics, for the dashboards (a run with Prometheus)."""
        exporter = getattr(self.faults.env, "harness_metrics", None)
        if exporter is not None:
            exporter.fault(self.description, active)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        try:
            self._heal()
        except Exception as heal_error:
            if exc is None:
                raise
            # The check's own failure is the story; a failed heal is a footnote to it.
            exc.add_note(f"chaoslab: healing '{self.description}' also failed: {heal_error}")
        finally:
            if self.event is not None and self.event.end is None:
                self.event.end = self.faults.clock()
                self._show(active=False)

    def __str__(self) -> str:
        return self.description


@contextmanager
def all_of(*faults: _Heal) -> Iterator[list[FaultEvent]]:
    """Several faults at once; each one healed, in reverse order, whatever happens."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(f) for f in faults]
