"""How checkout and payments serve: uvicorn, over TLS when given an SSLContext. Owned by the
lab, not by you.

uvicorn does not tell an app who its TLS peer is. This adds the ASGI TLS extension
(https://asgi.readthedocs.io/en/latest/specs/tls.html): a request that came over TLS has
`request.scope["extensions"]["tls"]`, with
    "client_cert_chain": the caller's certificate (PEM), first in a list; [] without one
    "client_cert_name":  that certificate's subject (RFC 4514), or None
A request over plain HTTP has no "tls" extension.
"""

import asyncio
import os
import ssl
from typing import Any

import uvicorn
from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


class _H11WithTLS(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, telling the app about the TLS peer of its connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)  # after the handshake: verified
        tls: dict[str, Any] = {
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": x509.load_der_x509_certificate(der).subject.rfc4514_string()
            if der
            else None,
            "client_cert_error": None,
            "server_cert": None,
            "tls_version": None,
            "cipher_suite": None,
        }
        app = self.app

        async def with_tls(scope: Scope, receive: Receive, send: Send) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
            await app(scope, receive, send)

        self.app = with_tls


def serve(app: ASGIApp, ssl_context: ssl.SSLContext | None) -> None:
    """Serve `app` on HOST:PORT: plain HTTP with None, else TLS with `ssl_context`."""
    config = uvicorn.Config(
        app,
        host=os.environ["HOST"],
        port=int(os.environ["PORT"]),
        log_level="warning",
        http=_H11WithTLS,
    )
    config.load()
    config.ssl = ssl_context
    uvicorn.Server(config).run()
