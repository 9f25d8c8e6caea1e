"""The real Toxiproxy server of a run, and a small typed client for its HTTP API.

Why not the toxiproxy-python package: it keeps the server address in class attributes of
`APIConsumer` (two runs in one process would drive each other's server), its requests carry no
timeout (a stuck server would hang a check forever), and it pulls in `future` and `requests`.
Its API is a thin layer over a dozen HTTP calls, so this module speaks them directly with httpx,
one client per server, every call bounded by a timeout.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from harness._errors import ToxiproxyError
from harness.ports import HOST, free_ports, listener_is
from harness.processes import ChildProcess
from harness.tools import find_toxiproxy

Stream = Literal["upstream", "downstream"]
API_TIMEOUT = 5.0


@dataclass(frozen=True)
class Toxic:
    """A toxic as the server knows it: type, stream, toxicity and attributes."""

    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int | float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...]


class ToxiproxyClient:
    """The HTTP API of one Toxiproxy server; every call has a timeout."""

    def __init__(self, base_url: str, timeout: float = API_TIMEOUT) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: object = None) -> Any:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise ToxiproxyError(
                f"Toxiproxy at {self.base_url} did not answer {method} {path}: {exc!r}.\n"
                "  Hint: the server may have crashed; see toxiproxy.log in the run's logs."
            ) from exc
        if response.status_code >= 400:
            raise ToxiproxyError(
                f"Toxiproxy refused {method} {path} ({response.status_code}): "
                f"{response.text.strip()}"
            )
        return response.json() if response.content else None

    def version(self) -> str:
        return str(self._call("GET", "/version")["version"])

    def create_proxy(self, name: str, listen: str, upstream: str) -> ProxyInfo:
        data = self._call(
            "POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream}
        )
        return _proxy(data)

    def proxies(self) -> dict[str, ProxyInfo]:
        return {name: _proxy(raw) for name, raw in self._call("GET", "/proxies").items()}

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def set_upstream(self, proxy: str, upstream: str) -> None:
        """Send the proxy's new connections to `upstream` (Toxiproxy closes its open ones)."""
        self._call("POST", f"/proxies/{proxy}", {"upstream": upstream})

    def add_toxic(self, proxy: str, toxic: Toxic) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics", toxic.as_json())

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")


def _proxy(raw: Mapping[str, Any]) -> ProxyInfo:
    toxics = tuple(
        Toxic(t["name"], t["type"], t["stream"], t["toxicity"], t.get("attributes") or {})
        for t in raw.get("toxics") or ()
    )
    return ProxyInfo(raw["name"], raw["listen"], raw["upstream"], raw["enabled"], toxics)


class ToxiproxyServer:
    """A `toxiproxy-server` process for one run, on a free port."""

    def __init__(self, run_id: str, log: Path, seed: int = 0) -> None:
        self.run_id = run_id
        self.log = log
        self.seed = seed
        self.port = 0
        self._process: ChildProcess | None = None
        self._client: ToxiproxyClient | None = None

    @property
    def client(self) -> ToxiproxyClient:
        if self._client is None:
            raise ToxiproxyError("the Toxiproxy server is not started")
        return self._client

    def start(self, timeout: float = 10.0) -> ToxiproxyServer:
        binary = find_toxiproxy()
        self.port = free_ports(1)[0]
        argv = [str(binary), "-host", HOST, "-port", str(self.port), "-seed", str(self.seed)]
        # Toxiproxy logs every API call at debug level; a learner reading the logs wants the
        # proxies and toxics as they come and go (info), not pages of request lines.
        env = {**os.environ, "LOG_LEVEL": "info"}
        self._process = ChildProcess(
            "toxiproxy", argv, run_id=self.run_id, log=self.log, env=env
        ).start()
        self._client = ToxiproxyClient(f"http://{HOST}:{self.port}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._client.version()
                # Someone answered; it must be our server, not another run's on that port.
                if listener_is(self._process.pid or 0, self.port) is False:
                    raise ToxiproxyError("another program answers on this port")
                return self
            except ToxiproxyError:
                code = self._process.exit_code()
                if code is not None or time.monotonic() > deadline:
                    tail = self._process.log_tail(10)
                    self.stop()
                    raise ToxiproxyError(
                        f"toxiproxy-server ({binary}) did not start on port {self.port}"
                        f" (exit code {code}).\n  Last log lines:\n{tail}\n"
                        "  Hint: run 'chaoslab doctor'."
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None:
            self._process.kill()
            self._process = None
