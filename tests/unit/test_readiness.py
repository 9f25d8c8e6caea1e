"""harness.readiness.wait_ready with a fake target, clock, sleep and probe."""

from __future__ import annotations

import pytest

from harness._errors import PortInUse, RunError, ServiceNotReady
from harness.lab import Readiness
from harness.readiness import wait_ready


class FakeTarget:
    name = "payments"
    host = "127.0.0.1"
    port = 8123

    def __init__(self, code=None, log="Traceback (most recent call last):\nKeyError: 'PORT'\n"):
        self.code = code
        self.log = log
        self.tail_asked = None

    def exit_code(self):
        return self.code

    def log_tail(self, lines=20):
        self.tail_asked = lines
        return self.log


class FakeTime:
    """A clock that only moves when the wait sleeps."""

    def __init__(self):
        self.now = 50.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Probe:
    """Ready from the `ready_on`-th attempt on (never when None)."""

    def __init__(self, ready_on=None):
        self.ready_on = ready_on
        self.calls = 0

    def __call__(self, target, readiness):
        self.calls += 1
        return self.ready_on is not None and self.calls >= self.ready_on


@pytest.fixture
def fake_time():
    return FakeTime()


def _wait(target, readiness, fake_time, probe):
    return wait_ready(target, readiness, clock=fake_time.clock, sleep=fake_time.sleep, check=probe)


def test_returns_at_once_when_ready(fake_time):
    waited = _wait(FakeTarget(), Readiness(), fake_time, Probe(ready_on=1))
    assert waited == 0.0
    assert fake_time.sleeps == []


def test_returns_the_seconds_waited_when_ready_later(fake_time):
    probe = Probe(ready_on=4)
    waited = _wait(FakeTarget(), Readiness(), fake_time, probe)

    assert probe.calls == 4
    assert fake_time.sleeps == [0.01, 0.02, 0.04]
    assert waited == pytest.approx(0.07)


def test_backs_off_up_to_a_tenth_of_a_second(fake_time):
    _wait(FakeTarget(), Readiness(timeout=1.0), fake_time, Probe(ready_on=8))
    assert fake_time.sleeps == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1])


def test_timeout_raises_with_last_log_lines_and_a_hint(fake_time):
    target = FakeTarget()

    with pytest.raises(ServiceNotReady) as caught:
        _wait(target, Readiness(kind="http", path="/health", timeout=2.0), fake_time, Probe())

    text = str(caught.value)
    assert isinstance(caught.value, RunError)
    assert text.startswith("service 'payments' was not ready after 2 s (waiting on /health).")
    assert (
        "  Last log lines:\n    Traceback (most recent call last):\n    KeyError: 'PORT'\n" in text
    )
    assert "\n  Hint: " in text
    assert target.tail_asked == 20
    assert fake_time.now - 50.0 > 2.0  # it did wait the whole timeout
    assert fake_time.now - 50.0 < 2.2  # and not much longer


def test_timeout_on_a_port_names_the_port(fake_time):
    with pytest.raises(ServiceNotReady, match=r"waiting on port 8123"):
        _wait(FakeTarget(), Readiness(kind="port", path="", timeout=0.5), fake_time, Probe())


def test_raises_at_once_when_the_target_exited(fake_time):
    probe = Probe()

    with pytest.raises(ServiceNotReady) as caught:
        _wait(FakeTarget(code=1), Readiness(timeout=20.0), fake_time, probe)

    assert "service 'payments' exited with code 1 before it was ready." in str(caught.value)
    assert "KeyError: 'PORT'" in str(caught.value)
    assert "Hint:" in str(caught.value)
    assert probe.calls == 1
    assert fake_time.sleeps == []


def test_no_output_is_said_plainly(fake_time):
    with pytest.raises(ServiceNotReady, match=r"Last log lines:\n    \(no output\)"):
        _wait(FakeTarget(code=-9, log="  \n"), Readiness(), fake_time, Probe())


UVICORN_BUSY = (
    "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): "
    "address already in use"
)


class Busy:
    """A service that exited because the port it tried to bind was taken."""

    name = "api"
    host = "127.0.0.1"
    port = 4242

    def __init__(self, log):
        self.log = log

    def exit_code(self):
        return 1

    def log_tail(self, lines=20):
        return self.log


def test_a_busy_port_gets_its_own_hint():
    from harness.readiness import _explain

    text = _explain(Busy(UVICORN_BUSY.format(port=4242)), "exited with code 1 before it was ready")
    assert "port 4242 is busy" in text
    assert "ss -ltnp sport = :4242" in text
    assert "Hint:" in text


def test_a_service_that_lost_its_port_raises_port_in_use():
    from harness import PortInUse

    with pytest.raises(PortInUse, match="port 4242 is busy") as caught:
        wait_ready(Busy(UVICORN_BUSY.format(port=4242)), Readiness(), check=lambda target, r: False)
    assert caught.value.port == 4242


@pytest.mark.parametrize(
    "log",
    [
        UVICORN_BUSY.format(port=8000),
        "listen tcp 127.0.0.1:8000: bind: address already in use",
        "Error: listen EADDRINUSE: address already in use :::8000",
    ],
    ids=["uvicorn", "go", "node"],
)
def test_the_hint_names_the_port_really_taken_not_the_harness_port(log):
    from harness import PortInUse

    with pytest.raises(PortInUse) as caught:
        wait_ready(Busy(log), Readiness(), check=lambda target, r: False)

    text = str(caught.value)
    assert caught.value.port == 8000
    assert "Hint: port 8000 is busy" in text
    assert "ss -ltnp sport = :8000" in text
    assert "PORT=4242" in text  # what the harness gave it
    assert "port 4242 is busy" not in text


def test_a_busy_port_the_log_does_not_name_blames_no_port():
    from harness import PortInUse

    with pytest.raises(PortInUse) as caught:
        wait_ready(
            Busy("OSError: [Errno 98] Address already in use"),
            Readiness(),
            check=lambda target, r: False,
        )
    assert caught.value.port is None
    assert "is busy" in str(caught.value)
    assert "port 4242 is busy" not in str(caught.value)


def test_a_huge_log_line_is_cut_in_the_error(fake_time):
    huge = "x" * 1_000_000
    target = FakeTarget(code=1, log=f"starting\n{huge}\nRuntimeError: boom\n")

    with pytest.raises(ServiceNotReady) as caught:
        _wait(target, Readiness(), fake_time, Probe())

    text = str(caught.value)
    assert len(text) < 2_000
    assert f"    {'x' * 300}... (999700 more characters)\n" in text
    assert "RuntimeError: boom" in text
    assert "    starting\n" in text


class SquattedTarget(FakeTarget):
    """A service whose port another run's program took first: that program answers the
    probe; the service itself fails to bind and exits `exits_after` checks later (or never)."""

    def __init__(self, exits_after=None):
        super().__init__(
            log="ERROR: [Errno 98] error while attempting to bind on address "
            "('127.0.0.1', 8123): address already in use\n"
        )
        self.exits_after = exits_after
        self.checks = 0

    def owns_port(self):
        return False

    def exit_code(self):
        self.checks += 1
        return 1 if self.exits_after is not None and self.checks >= self.exits_after else None


def test_an_answer_from_another_program_on_the_port_is_not_readiness(fake_time):
    # Another run's Jaeger answers 200 on any path: the service must not be taken as ready.
    with pytest.raises(PortInUse) as caught:
        _wait(SquattedTarget(exits_after=3), Readiness(), fake_time, Probe(ready_on=1))
    assert caught.value.port == 8123  # the environment starts the run again on new ports


def test_another_program_on_the_port_until_the_timeout_is_port_in_use(fake_time):
    with pytest.raises(PortInUse, match="another program answers on its port 8123"):
        _wait(SquattedTarget(), Readiness(timeout=1.0), fake_time, Probe(ready_on=1))


def test_a_target_that_owns_its_port_is_ready(fake_time):
    class Owner(FakeTarget):
        def owns_port(self):
            return True

    assert _wait(Owner(), Readiness(), fake_time, Probe(ready_on=1)) == 0.0
