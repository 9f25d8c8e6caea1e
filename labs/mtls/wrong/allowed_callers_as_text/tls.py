"""How our services reach each other, and whom they serve: mutual TLS on every link.

Every service holds a certificate of the run's CA, naming it (TLS_DIR/cert.pem: the
certificate, then its key). A server serves only callers that present such a certificate, for
a name in ALLOWED_CALLERS. A client talks only to a server whose certificate names the service
it wanted. Certificates are renewed while we run: a new cert.pem is loaded at the next handshake.

Wrong: the allow-list is the environment's string as it is, and `in` on a string finds any part
of it: a certificate for 'check' gets into payments, whose allow-list is 'checkout'.
Rejected by: test_4_only_allowed_callers_get_in
"""

import os
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from starlette.requests import Request

TLS_DIR = Path(os.environ["TLS_DIR"])
CA_FILE = TLS_DIR / "ca.pem"
IDENTITY = TLS_DIR / "cert.pem"
ALLOWED_CALLERS = os.environ["ALLOWED_CALLERS"]  # e.g. "web" or "checkout"

_server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=CA_FILE)
_server.verify_mode = ssl.CERT_REQUIRED  # no certificate, no connection
_client = ssl.create_default_context(cafile=CA_FILE)  # verifies the chain and the name
_loaded: tuple[int, int] | None = None


def _load_if_renewed() -> None:
    """Load cert.pem into both contexts when it is a new file (a rotation renames one in)."""
    global _loaded
    stat = IDENTITY.stat()
    if (stat.st_mtime_ns, stat.st_ino) != _loaded:
        for context in (_server, _client):
            context.load_cert_chain(IDENTITY)
        _loaded = (stat.st_mtime_ns, stat.st_ino)


def _at_handshake(connection: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
    # This connection took the certificate loaded when it was accepted: one renewed since is
    # loaded now, and served from the next handshake on.
    _load_if_renewed()


def server_context() -> ssl.SSLContext | None:
    """The TLS settings a service serves with."""
    _load_if_renewed()
    _server.sni_callback = _at_handshake
    return _server


def client(url: str, peer: str) -> httpx.AsyncClient:
    """A client for the service `peer`, at `url` (the proxy's address: https, with the name
    of the peer to verify its certificate against)."""

    async def expect_peer(request: httpx.Request) -> None:
        _load_if_renewed()
        request.extensions["sni_hostname"] = peer

    _load_if_renewed()
    return httpx.AsyncClient(
        base_url=httpx.URL(url).copy_with(scheme="https"),
        verify=_client,
        timeout=5.0,
        event_hooks={"request": [expect_peer]},
    )


def caller_allowed(request: Request) -> bool:
    """Whether the caller's certificate names a service that may call this one."""
    chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain")
    if not chain:
        return False
    certificate = x509.load_pem_x509_certificate(chain[0].encode())
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return any(name in ALLOWED_CALLERS for name in names.value.get_values_for_type(x509.DNSName))
