"""A lab with a `[tracing]` table gets the real Jaeger, per run: the services it names send
their spans to it (OTLP, through the SDK's own variables), the checks read them back over its
query API, and it is gone with the run."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import LabEnvironment, load_lab
from harness._errors import PortInUse
from harness.ports import free_ports
from harness.tracing import Trace, install_jaeger
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration

TRACED = FIXTURE_LABS / "traced"
WITHIN = 10.0  # seconds for a span to reach Jaeger (the SDK sends every 100 ms)


@pytest.fixture(scope="module")
def env() -> Iterator[LabEnvironment]:
    install_jaeger()
    with LabEnvironment(load_lab(TRACED), seed=1) as running:
        yield running


def buy(env: LabEnvironment, trace_id: str, parent: str, flags: str = "01") -> None:
    headers = {"traceparent": f"00-{trace_id}-{parent}-{flags}"}
    httpx.post(f"{env.url('shop')}/buy", headers=headers, timeout=5).raise_for_status()


def wait_trace(env: LabEnvironment, trace_id: str) -> Trace:
    deadline = time.monotonic() + WITHIN
    while (found := env.jaeger.trace(trace_id)) is None:
        assert time.monotonic() < deadline, f"trace {trace_id} not in Jaeger within {WITHIN} s"
        time.sleep(0.1)
    return found


def test_a_services_span_arrives_whole(env: LabEnvironment) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    buy(env, trace_id, parent)

    trace = wait_trace(env, trace_id)

    (span,) = trace.spans
    assert (span.service, span.kind, span.name) == ("shop", "server", "POST /buy")
    assert span.parent_id == parent
    assert span.trace_id == trace_id
    assert "shop" in env.jaeger.services()


def test_traces_of_a_service_since_a_time(env: LabEnvironment) -> None:
    began = time.time()
    ids = [f"{n:032x}" for n in range(0x1111, 0x1114)]
    for trace_id in ids:
        buy(env, trace_id, "00000000000000aa")
    for trace_id in ids:
        wait_trace(env, trace_id)

    found = env.jaeger.traces_of(["shop", "no-such-service"], since=began)

    assert set(ids) <= set(found)


def test_an_unknown_trace_is_none(env: LabEnvironment) -> None:
    assert env.jaeger.trace("f" * 32) is None


def test_settle_returns_once_complete_or_quiet(env: LabEnvironment) -> None:
    began = time.time()
    buy(env, "2" * 32, "00000000000000bb")
    found = env.jaeger.settle(
        ["shop"], since=began, complete=lambda t: "2" * 32 in t, timeout=WITHIN
    )
    assert "2" * 32 in found

    start = time.monotonic()
    env.jaeger.settle(["shop"], since=began, complete=lambda t: False, timeout=WITHIN, quiet=0.5)
    assert time.monotonic() - start < WITHIN  # nothing new came: it stopped waiting


def test_two_runs_at_once_each_have_their_own_jaeger(env: LabEnvironment) -> None:
    with LabEnvironment(load_lab(TRACED), seed=2) as other:
        assert other.jaeger_url != env.jaeger_url
        buy(other, "3" * 32, "00000000000000cc")
        wait_trace(other, "3" * 32)
        assert env.jaeger.trace("3" * 32) is None  # spans go only to their own run's Jaeger


def test_jaeger_is_gone_with_the_run() -> None:
    with LabEnvironment(load_lab(TRACED), seed=3) as running:
        assert running.run is not None
        assert running.jaeger_url is not None
        url, config = running.jaeger_url, str(running.run.dir / "jaeger" / "config.yaml")
        assert _processes_running(config)
    assert not _processes_running(config)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/api/services", timeout=2)


def _processes_running(argument: str) -> list[str]:
    """The pids of this machine's processes with `argument` on their command line."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if argument in cmdline.read_bytes().decode(errors="replace"):
                found.append(cmdline.parent.name)
        except OSError:
            continue  # gone meanwhile
    return found


def test_a_jaeger_that_cannot_start_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "jaeger"
    broken.write_text(
        "#!/bin/sh\n"
        '[ "$1" = version ] && { echo \'{"gitVersion":"v0"}\'; exit 0; }\n'
        "echo 'cannot load the configuration: boom' >&2\nexit 3\n"
    )
    broken.chmod(0o755)
    run = subprocess.run(
        chaoslab_command("check", str(TRACED)),
        env=child_env(CHAOSLAB_JAEGER=str(broken)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    said = run.stdout + run.stderr
    assert "Jaeger did not start" in said
    assert "boom" in said  # its own last words
    assert "Traceback" not in said


def test_a_query_port_taken_meanwhile_is_port_in_use_so_the_run_starts_again(
    tmp_path: Path,
) -> None:
    from harness.tracing.config import render
    from harness.tracing.server import JaegerServer

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        otlp = free_ports(1)[0]
        config = tmp_path / "config.yaml"
        config.write_text(render("127.0.0.1", otlp, taken))
        server = JaegerServer(install_jaeger(), "test-run", config, tmp_path / "jaeger.log")
        with pytest.raises(PortInUse, match="address already in use"):
            server.start(taken)
    server.stop()
