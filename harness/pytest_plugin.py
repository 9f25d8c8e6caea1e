"""The pytest plugin (registered through `pytest11`): fixtures that hand a lab's checks a running
lab, its faults and a traffic driver, each reset between checks; and verdicts that read like a
story, not a traceback.

Two levels, as pytest-docker does it: a session-scoped factory starts each lab once, and the
function-scoped `lab` fixture hands it out and puts it back clean (no toxic, every service up).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from harness import recording
from harness._errors import ChaoslabError, LearnerServiceDown, RunError
from harness.backends import BACKENDS
from harness.checkers import CheckFailed, take_passed
from harness.environment import LabEnvironment, logs_dir
from harness.faults import Faults
from harness.lab import MANIFEST, Lab, load_lab
from harness.metrics.panels import HARNESS, capture, dashboard_for
from harness.tracing import waterfall
from harness.traffic import Traffic
from harness.variants import resolve_variant

_SEED_KEY = pytest.StashKey[int]()
_TIMELINE_KEY = pytest.StashKey[Faults]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaoslab", "chaoslab labs")
    group.addoption(
        "--solution",
        action="store_true",
        default=False,
        help="run the checks on the lab's reference solution (overlaid in a temp copy)",
    )
    group.addoption(
        "--variant",
        default=None,
        metavar="PATH",
        help="run the checks on this fix (wrong/x.py, also-correct/y.py: relative to the lab "
        "folder) in place of the learner's file, in a temp copy",
    )
    group.addoption(
        "--seed",
        type=int,
        default=None,
        help="seed for traffic and fault schedules (default: random, printed on failure)",
    )
    group.addoption(
        "--backend",
        choices=list(BACKENDS),
        default="process",
        help="where the lab's services run (default: local processes)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    recording.begin()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the real toxiproxy-server")
    config.addinivalue_line("markers", "slow: long repeated runs; not part of make test")
    config.addinivalue_line("markers", "docker: needs a running Docker engine")
    seed = config.getoption("--seed", None)
    config.stash[_SEED_KEY] = seed if seed is not None else random.SystemRandom().randrange(10**6)


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"chaoslab seed: {config.stash[_SEED_KEY]} (replay with --seed {config.stash[_SEED_KEY]})"
    )


def lab_for(path: Path) -> Lab:
    """The lab a check file belongs to: the nearest folder above it with a lab.toml."""
    for folder in path.resolve().parents:
        if (folder / MANIFEST).is_file():
            return load_lab(folder)
    raise pytest.UsageError(f"{path} is not inside a lab folder (no {MANIFEST} above it)")


class LabFactory:
    """Starts each lab once per session and stops them all at the end."""

    def __init__(
        self, solution: bool, seed: int, backend: str = "process", variant: str | None = None
    ) -> None:
        self.solution = solution
        self.seed = seed
        self.backend = backend
        self.variant = variant
        self._running: dict[Path, LabEnvironment] = {}

    def get(self, lab: Lab) -> LabEnvironment:
        env = self._running.get(lab.root)
        if env is None:
            env = LabEnvironment(
                lab,
                solution=self.solution,
                seed=self.seed,
                backend_name=self.backend,
                variant=resolve_variant(lab, self.variant) if self.variant else None,
            )
            self._running[lab.root] = env
            try:
                env.start()
            except ChaoslabError:
                raise
            except Exception as exc:  # the lab did not start: a setup error, not a check's
                raise RunError(
                    f"lab '{lab.slug}' could not start: {exc}\n  Hint: 'chaoslab logs "
                    f"{lab.slug}' shows what its services printed; 'chaoslab doctor' checks "
                    "the installation."
                ) from exc
        return env

    def close(self) -> None:
        for env in self._running.values():
            _draw_dashboard(env)
            _keep_traces(env)
            env.stop()  # keeps the run's logs, in logs_dir(slug)
            with contextlib.suppress(OSError):  # the report is a bonus, never a failure
                recording.write(logs_dir(env.lab.slug))
        self._running.clear()


def _draw_dashboard(env: LabEnvironment) -> None:
    """The lab's dashboard panels from its Prometheus, into the run's record (for the HTML
    report), before Prometheus stops with the run; a bonus, never a failure."""
    if env.prometheus_url is None or env.lab.metrics is None:
        return
    # The lab's own panels, then the harness's (the faults, what the clients saw).
    dashboards = [d for d in (dashboard_for(env.lab.slug), dashboard_for(HARNESS)) if d]
    began, now, step = recording.began_wall(), time.time(), env.lab.metrics.interval
    with contextlib.suppress(Exception):
        recording.track_panels(
            [p for d in dashboards for p in capture(env.prometheus, d, began, now, began, step)]
        )


def _keep_traces(env: LabEnvironment) -> None:
    """A few of the run's traces, as waterfalls for the HTML report, before Jaeger stops with
    the run; a bonus, never a failure."""
    if env.jaeger_url is None or env.lab.tracing is None:
        return
    with contextlib.suppress(Exception):
        found = env.jaeger.traces_of(env.lab.tracing.services, since=recording.began_wall())
        recording.track_traces(
            [waterfall.record(why, t) for why, t in waterfall.pick(found.values())]
        )


@pytest.fixture(scope="session")
def chaoslab_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed: `--seed`, else random and printed with every failure."""
    return pytestconfig.stash[_SEED_KEY]


@pytest.fixture(scope="session")
def lab_factory(pytestconfig: pytest.Config, chaoslab_seed: int) -> Iterator[LabFactory]:
    factory = LabFactory(
        bool(pytestconfig.getoption("--solution")),
        chaoslab_seed,
        str(pytestconfig.getoption("--backend")),
        pytestconfig.getoption("--variant"),
    )
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def lab_module(request: pytest.FixtureRequest, lab_factory: LabFactory) -> Iterator[LabEnvironment]:
    """The running lab for a module-scoped scenario; clean at the start and at the end."""
    env = lab_factory.get(lab_for(request.path))
    env.reset()
    yield env
    env.reset()


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_factory: LabFactory) -> Iterator[LabEnvironment]:
    """The running lab of the check's folder; every check starts with no toxic, all services up."""
    env = lab_factory.get(lab_for(request.path))
    env.reset()
    yield env
    env.reset()


@pytest.fixture
def faults(request: pytest.FixtureRequest, lab: LabEnvironment) -> Faults:
    """Faults on the running lab; the timeline is printed with a failure."""
    injected = Faults(lab)
    request.node.stash[_TIMELINE_KEY] = injected
    return injected


@pytest.fixture
def traffic(chaoslab_seed: int) -> Traffic:
    """Concurrent clients that record a history, seeded from the run's seed."""
    return Traffic(chaoslab_seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "setup":
        take_passed()  # what an earlier check passed is not this one's
    elif report.when == "call" and report.passed:
        shown = [f"{r.observed} (expected: {r.expected})" for r in take_passed()]
        if shown:
            report.user_properties.append(("chaoslab_passed", "\n".join(shown)))
    if report.failed and call.excinfo is not None:
        seed = item.config.stash[_SEED_KEY]
        error = call.excinfo.value
        if isinstance(error, (CheckFailed, LearnerServiceDown)):
            # The learner's verdict is the story, not the traceback into the harness. A
            # learner's service that did not come back between checks fails the check at hand
            # (exit 1, with its log), not the run ("could not run", exit 2).
            report.longrepr = str(error)
        elif isinstance(error, ChaoslabError):
            report.longrepr = f"chaoslab: {error}"
        injected = item.stash.get(_TIMELINE_KEY, None)
        if injected is not None and injected.timeline.events:
            timeline = "\n".join(f"  - {e}" for e in injected.timeline.events)
            report.sections.append(("chaoslab faults", timeline))
        report.sections.append(("chaoslab seed", f"replay with --seed {seed}"))
    return report
