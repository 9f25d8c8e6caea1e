"""harness.traffic: how an operation ends, and clients run in threads, seeded."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from harness.history import History
from harness.traffic import Client, Traffic


class FakeHttp:
    """Stands in for httpx.Client: a real one costs ~25 ms (its SSL context), and the workloads
    here never send a request."""

    instances: list[FakeHttp] = []

    def __init__(self, **options):
        self.options = options
        self.closed = False
        FakeHttp.instances.append(self)

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def fake_http(monkeypatch):
    FakeHttp.instances = []
    monkeypatch.setattr(httpx, "Client", FakeHttp)
    return FakeHttp


@pytest.fixture
def client():
    return Client(id=1, rng=random.Random(0), history=History(), http=FakeHttp())


_REQUEST = httpx.Request("POST", "http://127.0.0.1:1/charges")


# -- Client.op: how an operation ends --------------------------------------------------------
def test_a_clean_block_ends_ok(client):
    with client.op("charge", "c-1"):
        pass
    [op] = client.history
    assert (op.client, op.f, op.value, op.status, op.error) == (1, "charge", "c-1", "ok", None)
    assert op.end is not None


def test_ok_records_the_result(client):
    with client.op("read", "k1") as op:
        op.ok(42)
    [op] = client.history
    assert (op.status, op.result) == ("ok", 42)


def test_explicit_fail_ends_fail_with_its_reason(client):
    with client.op("charge", "c-1") as op:
        op.fail("card declined", result=402)
    [op] = client.history
    assert (op.status, op.error, op.result) == ("fail", "card declined", 402)


def test_explicit_unknown_ends_unknown(client):
    with client.op("charge", "c-1") as op:
        op.unknown("503 from the gateway")
    [op] = client.history
    assert (op.status, op.error) == ("unknown", "503 from the gateway")


def test_the_first_ending_wins(client):
    with client.op("charge", "c-1") as op:
        op.ok("done")
        op.fail("too late")
        raise httpx.ReadTimeout("late", request=_REQUEST)
    [op] = client.history
    assert (op.status, op.result) == ("ok", "done")


def test_connection_refused_ends_fail_and_is_absorbed(client):
    with client.op("charge", "c-1"):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=_REQUEST)
    [op] = client.history
    assert op.status == "fail"
    assert op.error == "connection refused (ConnectError)"


def test_read_timeout_ends_unknown(client):
    with client.op("charge", "c-1"):
        raise httpx.ReadTimeout("timed out", request=_REQUEST)
    [op] = client.history
    assert op.status == "unknown"
    assert op.error == "no answer in time (ReadTimeout)"


@pytest.mark.parametrize("error", [httpx.RemoteProtocolError, httpx.ReadError])
def test_cut_off_response_ends_unknown(client, error):
    with client.op("charge", "c-1"):
        raise error("Server disconnected without sending a response.", request=_REQUEST)
    [op] = client.history
    assert op.status == "unknown"
    assert op.error == f"connection dropped ({error.__name__})"


def test_a_bug_in_the_block_ends_unknown_and_propagates(client):
    with pytest.raises(KeyError), client.op("charge", "c-1"):
        raise KeyError("id")
    [op] = client.history
    assert op.status == "unknown"
    assert op.error == "KeyError: 'id'"


def test_sleep_is_cut_short_when_the_run_stops(client):
    client.stop.set()
    started = time.monotonic()
    assert client.sleep(5.0) is False
    assert time.monotonic() - started < 0.5
    client.stop.clear()
    assert client.sleep(0.0) is True


# -- TrafficRun ------------------------------------------------------------------------------
def _draws(history):
    """Each client's values, in its own order."""
    out = {}
    for op in history:
        out.setdefault(op.client, []).append(op.value)
    return out


def _draw(client):
    with client.op("draw", client.rng.randrange(10**9)):
        pass


def test_iterations_run_that_many_operations_per_client():
    history = Traffic(seed=1).run(_draw, clients=3, iterations=4)

    assert len(history) == 12
    assert history.counts() == {"ok": 12}
    assert {client: len(values) for client, values in _draws(history).items()} == {0: 4, 1: 4, 2: 4}


def test_the_same_seed_gives_the_same_sequences():
    first = _draws(Traffic(seed=7).run(_draw, clients=2, iterations=5))
    second = _draws(Traffic(seed=7).run(_draw, clients=2, iterations=5))
    other = _draws(Traffic(seed=8).run(_draw, clients=2, iterations=5))

    assert first == second
    assert first != other
    assert first[0] != first[1]  # each client has its own stream


def test_duration_bounds_the_run():
    def workload(client):
        with client.op("tick"):
            client.sleep(0.005)

    started = time.monotonic()
    history = Traffic(seed=0).run(workload, clients=2, duration=0.05)
    took = time.monotonic() - started

    assert 0.05 <= took < 0.5
    assert len(history) >= 2
    assert set(history.counts()) == {"ok"}


def test_stop_ends_a_background_run_promptly():
    def workload(client):
        with client.op("tick"):
            client.sleep(0.005)

    run = Traffic(seed=0).start(workload, clients=2)  # no bound given: 60 s at most
    deadline = time.monotonic() + 5
    while len(run.history) < 2 and time.monotonic() < deadline:  # running, on a busy machine too
        time.sleep(0.01)
    started = time.monotonic()
    history = run.stop()

    assert time.monotonic() - started < 0.5
    assert len(history) >= 2
    assert "invoke" not in history.counts()


def test_an_exception_inside_a_workload_surfaces_from_wait():
    def workload(client):
        with client.op("charge", "c-1"):
            raise RuntimeError("bug in the workload")

    run = Traffic(seed=0).start(workload, clients=2, iterations=3)

    with pytest.raises(RuntimeError, match="bug in the workload"):
        run.wait(timeout=5)
    assert {op.status for op in run.history} == {"unknown"}
    # the first error stops every client: none runs on for its full count
    assert 1 <= len(run.history) <= 2


def test_an_exception_inside_a_workload_surfaces_from_run():
    def workload(client):
        raise ValueError("no such key")

    with pytest.raises(ValueError, match="no such key"):
        Traffic(seed=0).run(workload, clients=1, iterations=1)


def test_each_client_gets_its_own_http_client_closed_at_the_end(fake_http):
    Traffic(seed=0).run(_draw, clients=2, iterations=1, timeout=1.5)

    assert len(fake_http.instances) == 2
    assert all(http.closed for http in fake_http.instances)
    for http in fake_http.instances:
        transport = http.options.pop("transport")
        assert http.options == {"timeout": 1.5, "trust_env": False}
        # Under each client, the transport that shows what it saw on the harness's metrics.
        assert type(transport).__name__ == "_ObservedTransport"


def test_runs_of_one_traffic_share_its_history():
    traffic = Traffic(seed=0)
    traffic.run(_draw, clients=1, iterations=2)
    traffic.run(_draw, clients=1, iterations=3)
    assert len(traffic.history) == 5
