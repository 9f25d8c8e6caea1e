"""harness.ports: ports chosen at random below the ephemeral range, and who listens on one."""

from __future__ import annotations

import os
import socket

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
