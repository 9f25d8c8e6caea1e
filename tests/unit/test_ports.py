"""harness.ports: ports chosen at random below the ephemeral range, and who listens on one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from harness import ports


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    chosen = ports.free_ports(8)
    assert len(set(chosen)) == 8
    assert all(ports.PORT_RANGE[0] <= port < ports.PORT_RANGE[1] for port in chosen)
    for port in chosen:
        with socket.socket() as sock:
            sock.bind((ports.HOST, port))


def test_the_listener_of_a_port_is_told_apart_from_another_process() -> None:
    with socket.socket() as sock:
        sock.bind((ports.HOST, 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ports.listener_is(os.getpid(), port) is True
        assert ports.listener_is(1, port) in (False, None)  # init does not listen there
    assert ports.listener_is(os.getpid(), port) is False  # nobody listens any more


def test_a_listener_is_found_in_its_process_group_and_listed_with_its_address() -> None:
    with socket.socket() as sock:
        sock.bind((ports.HOST, 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ports.listener_in_group(os.getpgid(0), port) is True
        assert (ports.HOST, port, os.getpid()) in ports.listening([os.getpid()])
    assert (ports.HOST, port, os.getpid()) not in ports.listening([os.getpid()])


def test_descendants_are_children_and_their_children() -> None:
    with subprocess.Popen(["sh", "-c", "sleep 5 & wait"], start_new_session=True) as child:
        try:
            deadline = time.monotonic() + 5
            while len(below := ports.descendants(os.getpid())) < 2:
                assert time.monotonic() < deadline, below
                time.sleep(0.02)
            assert child.pid in below
        finally:
            os.killpg(child.pid, signal.SIGKILL)  # the sleep too
