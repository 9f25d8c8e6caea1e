"""On the process backend a run is reachable from this machine only: every socket it listens
on (its services, its Toxiproxy's API and proxies, its Prometheus, Jaeger and the harness's own
metrics) is bound to a loopback address, never to 0.0.0.0 or an outside interface."""

from __future__ import annotations

import ipaddress
import os

import pytest

from harness import LabEnvironment, load_lab
from harness.ports import descendants, listening
from harness.tracing import install_jaeger
from tests.conftest import FIXTURE_LABS

pytestmark = pytest.mark.integration


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.mark.parametrize(
    ("fixture", "companion"), [("metered", "prometheus"), ("traced", "jaeger")]
)
def test_a_run_listens_on_loopback_only(fixture: str, companion: str) -> None:
    if companion == "jaeger":
        install_jaeger()
    with LabEnvironment(load_lab(FIXTURE_LABS / fixture), seed=1):
        sockets = listening([os.getpid(), *descendants(os.getpid())])

    exposed = [s for s in sockets if not loopback(s[0])]
    assert not exposed, f"a run listens beyond this machine: {exposed}"
    # Its services, Toxiproxy (API and a proxy per link) and its companion, at least.
    assert len({pid for _, _, pid in sockets}) >= 3, sockets
