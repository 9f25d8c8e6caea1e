"""How our services reach each other, and whom they serve.

They all run inside our private network, behind the firewall, and TLS ends at the load
balancer in front of it. Inside, plain HTTP is simple and fast, and whoever can reach a
service is one of ours.
"""

import ssl

import httpx
from starlette.requests import Request


def server_context() -> ssl.SSLContext | None:
    """The TLS settings a service serves with. None: plain HTTP (TLS ends at the balancer)."""
    return None


def client(url: str, peer: str) -> httpx.AsyncClient:
    """A client for the service `peer`, at `url` (the address the environment gives)."""
    return httpx.AsyncClient(base_url=url, timeout=5.0)


def caller_allowed(request: Request) -> bool:
    """Whether the caller may use this service: the firewall lets only our services in."""
    return True
