"""The same labs as containers: one private network per run, Toxiproxy as a container, and every
service a container that reaches its peers by name through Toxiproxy.

Crash is `docker kill` (SIGKILL), pause is `docker pause` (the cgroup freezer), restart starts the
same container again (same port, environment and mounts). The lab's code and the run's folder are
bind-mounted at the same absolute paths, so `$STATE_DIR` means the same thing on both backends.

How the host reaches the containers: on a Linux host with a rootful engine the host routes to the
run network, so readiness probes, the Toxiproxy API and the checks' proxies use container
addresses directly. That keeps TCP exactly as on the process backend: Docker's userland proxy,
which serves ports published on 127.0.0.1, accepts every connection before it knows whether the
container listens, so through it a refused connection looks like a closed one and a port probe
says "ready" too early. Where the host cannot route to containers (Docker Desktop, rootless, or
`CHAOSLAB_DOCKER_PUBLISHED=1`) every address is a port published on 127.0.0.1.

Nothing outlives a run: everything carries the label `chaoslab.run=<run id>`; `close()` removes
all of it; a watchdog process removes it if the harness is killed (it notices its pipe close);
and the reaper registered with `harness.runs` removes whatever belongs to no live run.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from harness._errors import RunError, SetupError, ToxiproxyError
from harness.backends.base import Stopped
from harness.images import POSTGRES_HOME, Images, ensure_images
from harness.lab import ServiceSpec
from harness.metrics.program import Prometheus
from harness.metrics.server import command, wait_ready
from harness.ports import HOST, is_local_address, is_open
from harness.postgres import server as postgres_server
from harness.postgres.program import Postgres, ensure_libraries, ensure_template
from harness.processes import stamp
from harness.runs import OWNER_ENV, RUN_ENV, Owner, Run, reap_stale, register_reaper
from harness.signals import signals_deferred
from harness.toxiproxy import ToxiproxyClient
from harness.tracing import server as jaeger_server
from harness.tracing.program import Jaeger

RUN_LABEL = "chaoslab.run"
SERVICE_LABEL = "chaoslab.service"
USER_LABEL = "chaoslab.user"  # the engine may be shared: reap only this user's runs
OWNER_LABEL = "chaoslab.owner"  # the harness process, exactly: reap only what is provably dead
TOXIPROXY = "toxiproxy"  # the Toxiproxy container's name on the run network
PROMETHEUS = "prometheus"  # the Prometheus container's name, for a lab that has one
JAEGER = "jaeger"  # the Jaeger container's name, for a lab that has traces
POSTGRES = "postgres"  # the PostgreSQL container's name, for a lab with a database
NOBODY = "65534:65534"  # PostgreSQL refuses to run as root; nobody is in every base image
ZONEINFO = "/usr/share/zoneinfo"  # where Debian's PostgreSQL finds "UTC"
TOXIPROXY_API_PORT = 8474
KILLED = 137  # a container's exit code after SIGKILL (128 + 9)
PUBLISHED_ENV = "CHAOSLAB_DOCKER_PUBLISHED"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOT_RUNNING = (
    "Docker is not running: start it (or run scripts/docker-engine.sh as root), "
    "or use --backend process"
)


def connect(timeout: float = 60) -> Any:
    """A client of the local engine (`DOCKER_HOST` or the default socket), or a SetupError."""
    # Only the docker backend needs the SDK. `docker.client`, not `docker`: for mypy the
    # project's docker/ folder (Dockerfiles) would shadow the package's top level.
    from docker.client import from_env  # noqa: PLC0415

    try:
        client = from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # DockerException, or requests' errors that the SDK lets through
        raise SetupError(f"{NOT_RUNNING}.\n  ({exc})") from exc
    return client


class ContainerService:
    """A lab service as a container; what readiness waits and error messages see.

    The container is created at once and started in the background (`started`), so that the
    services of a lab start side by side; whatever needs it running waits for that first.
    """

    def __init__(
        self,
        backend: DockerBackend,
        spec: ServiceSpec,
        port: int,
        container: Any,
        started: Future[None] | None = None,
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.container = container
        self.env: dict[str, str] = {}  # as the environment gave it, for a restart that changes it
        # The output of the containers this one replaced: stamped (for the logs folder) and
        # as written (for log_lines).
        self.earlier_stamped: list[str] = []
        self.earlier_lines: list[str] = []
        self.paused = False
        self._backend = backend
        self._port = port
        self._address = ""
        self._started = started
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        if not self._backend.direct:
            return HOST
        self.wait_started()
        return self._address

    @property
    def port(self) -> int:
        return self._port

    def wait_started(self) -> None:
        """Block until the background start is done; raises its error (a RunError)."""
        with self._lock:  # readiness threads and the checks may ask at the same time
            if self._started is not None:
                started, self._started = self._started, None
                started.result()
                self.refresh()

    def refresh(self) -> None:
        """Read the container's state again: its address changes when it restarts."""
        self.container.reload()
        self._address = _address_on(self.container, self._backend.network_name)

    def exit_code(self) -> int | None:
        """None while the container runs (or is paused), else its exit code (137 after kill)."""
        from docker.errors import NotFound  # noqa: PLC0415

        self.wait_started()
        try:
            self.container.reload()
        except NotFound:
            return -1
        state = self.container.attrs["State"]
        if state.get("Status") in ("created", "running", "paused", "restarting"):
            return None
        return int(state.get("ExitCode", -1))

    def log_tail(self, lines: int = 20) -> str:
        return _logs(self.container, tail=lines)

    def log_lines(self) -> list[str]:
        """Every line the container has written so far (stdout and stderr, across restarts),
        as it wrote them."""
        from docker.errors import DockerException  # noqa: PLC0415

        try:
            raw = self.container.logs(stdout=True, stderr=True, tail="all")
        except DockerException:
            return list(self.earlier_lines)
        return [*self.earlier_lines, *bytes(raw).decode(errors="replace").splitlines()]


class DockerBackend:
    """Runs a lab's services as containers on a network of their own, Toxiproxy included."""

    name = "docker"
    listen_host = "0.0.0.0"

    def __init__(self, run: Run, workdir: Path) -> None:
        self.run = run
        self.workdir = workdir
        self.network_name = f"chaoslab-{run.id}"
        self.direct = False  # the host routes to container addresses (see the module docstring)
        self.images: Images | None = None
        self._services: dict[str, ContainerService] = {}
        self._toxiproxy: Any = None
        self._prometheus: Any = None
        self._jaeger: Any = None
        self._postgres: Any = None
        self._toxiproxy_address = ""
        self._published: set[int] = set()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._starter = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chaoslab-start")
        self._closed = False
        self._client = connect()
        _reap_once()
        try:
            self.images = ensure_images(self._client)
            self._watchdog = _start_watchdog(run.id)
            with signals_deferred():  # see harness.signals: cut mid-request, it would outlive us
                self._client.networks.create(
                    self.network_name, driver="bridge", labels=self._labels(), check_duplicate=True
                )
        except BaseException:
            with signals_deferred():
                self.close()
            raise

    # -- Toxiproxy -----------------------------------------------------------------------------
    def start_toxiproxy(self, seed: int, published: Sequence[int] = ()) -> ToxiproxyClient:
        """Toxiproxy as a container named `toxiproxy` on the run network. `published`: the proxy
        ports the checks use, published on 127.0.0.1 at the same numbers."""
        assert self.images is not None
        ports: dict[str, Any] = {f"{TOXIPROXY_API_PORT}/tcp": (HOST, None)}
        ports.update({f"{port}/tcp": (HOST, port) for port in published})
        self._published = set(published)
        self._toxiproxy = self._create_container(
            TOXIPROXY,
            self.images.toxiproxy,
            ["-host=0.0.0.0", f"-port={TOXIPROXY_API_PORT}", f"-seed={seed}"],
            ports=ports,
            environment={"LOG_LEVEL": "info"},  # proxies and toxics, not every API call
        )
        _start(self._toxiproxy, TOXIPROXY)
        self._toxiproxy.reload()
        self._toxiproxy_address = _address_on(self._toxiproxy, self.network_name)
        # Ready once the API answers through its published port; then, with the server surely
        # listening, one connection tells whether this host routes to the container itself.
        base = f"http://{HOST}:{_published_port(self._toxiproxy, TOXIPROXY_API_PORT)}"
        client = ToxiproxyClient(base)
        deadline = time.monotonic() + 10.0
        while True:
            try:
                client.version()
                break
            except ToxiproxyError:
                self._toxiproxy.reload()
                status = self._toxiproxy.status
                if status not in ("created", "running") or time.monotonic() > deadline:
                    client.close()
                    raise ToxiproxyError(
                        f"the Toxiproxy container ({self.images.toxiproxy}) did not answer at "
                        f"{base} (status {status}).\n  Last log lines:\n"
                        f"{_logs(self._toxiproxy, tail=10)}\n"
                        f"  Hint: check the image, or set CHAOSLAB_TOXIPROXY_IMAGE."
                    ) from None
                time.sleep(0.05)
        self.direct = (
            os.environ.get(PUBLISHED_ENV) != "1"
            and bool(self._toxiproxy_address)
            and is_open(TOXIPROXY_API_PORT, self._toxiproxy_address, timeout=0.5)
        )
        if not self.direct:
            return client
        client.close()
        return ToxiproxyClient(f"http://{self._toxiproxy_address}:{TOXIPROXY_API_PORT}")

    def proxy_listen(self, port: int) -> str:
        return f"0.0.0.0:{port}"

    # -- Prometheus ----------------------------------------------------------------------------
    def start_prometheus(self, program: Prometheus, folder: Path, port: int) -> str:
        """Prometheus as a container named `prometheus` on the run network (the run's folder,
        its configuration and storage, mounted read-write), published on 127.0.0.1 at `port`."""
        mounts = {str(self.run.dir): "rw"}  # its storage is in the run's folder
        self._prometheus, url = self._start_companion(
            PROMETHEUS,
            command(program, folder, f"0.0.0.0:{port}"),
            program.server,
            port,
            mounts,
            wait_ready,
        )
        return url

    def scrape_address(self, service: str, port: int) -> str:
        return f"{service}:{port}"  # on the run network, as Toxiproxy reaches it

    def prometheus_address(self, port: int) -> str:
        return f"{PROMETHEUS}:{port}"  # on the run network

    # -- Jaeger --------------------------------------------------------------------------------
    def start_jaeger(self, program: Jaeger, config: Path, otlp_port: int, query_port: int) -> str:
        """Jaeger as a container named `jaeger` on the run network (its configuration's folder
        mounted read-only), its query API published on 127.0.0.1 at `query_port`."""
        mounts = {str(config.parent): "ro"}
        self._jaeger, url = self._start_companion(
            JAEGER,
            jaeger_server.command(program, config),
            program.binary,
            query_port,
            mounts,
            jaeger_server.wait_ready,
        )
        return url

    # -- PostgreSQL ----------------------------------------------------------------------------
    def start_postgres(self, program: Postgres, port: int) -> str:
        """PostgreSQL as a container named `postgres` on the run network, in the base image
        (Debian 12, as the host): the host's installation and the libraries it links to,
        mounted read-only; its data a copy of the cached template inside the container (as
        nobody: PostgreSQL refuses root, and nothing of it is left on the host to clean);
        published on 127.0.0.1 at `port`."""
        # Mounted where nobody may read them (the host's cache is under a home folder that
        # the container's nobody could not enter), where the compose image keeps them too.
        template, libraries = f"{POSTGRES_HOME}/template", f"{POSTGRES_HOME}/lib"
        mounts = {
            str(ensure_template(program)): (template, "ro"),
            str(ensure_libraries(program)): (libraries, "ro"),
            str(program.libdir): (str(program.libdir), "ro"),
            str(program.sharedir): (str(program.sharedir), "ro"),
        }
        if Path(ZONEINFO).is_dir():
            mounts[ZONEINFO] = (ZONEINFO, "ro")
        self._postgres, _ = self._start_companion(
            POSTGRES,
            postgres_server.in_container(program.server, template, port),
            None,
            port,
            mounts,
            lambda url, gone: postgres_server.wait_ready(f"{HOST}:{port}", gone),
            user=NOBODY,
            environment={"LD_LIBRARY_PATH": libraries},
        )
        return f"{HOST}:{port}"

    def postgres_address(self, port: int) -> str:
        return f"{POSTGRES}:{port}"  # on the run network

    def postgres_log(self) -> list[str]:
        if self._postgres is None:
            return []
        return _logs(self._postgres).splitlines()

    def _start_companion(
        self,
        name: str,
        argv: list[str],
        binary: Path | None,
        port: int,
        mounts: Mapping[str, str | tuple[str, str]],
        wait: Callable[[str, Callable[[], str | None]], None],
        user: str | None = None,
        environment: dict[str, str] | None = None,
    ) -> tuple[Any, str]:
        """A companion of the run (Prometheus, Jaeger, PostgreSQL) as a container named `name`
        on the run network, in the base image: its binary, from the host's cache, and `mounts`
        (path -> mode, bound at the same path as on the host, or path -> (where, mode));
        `port` published on 127.0.0.1.
        It runs as this user unless `user` says otherwise. The container and its URL, once
        `wait(url, gone)` saw it answer."""
        assert self.images is not None
        volumes = {}
        for path, how in mounts.items():
            bind, mode = how if isinstance(how, tuple) else (path, how)
            volumes[path] = {"bind": bind, "mode": mode}
        if binary is not None:
            volumes[str(binary.parent)] = {"bind": str(binary.parent), "mode": "ro"}
        container = self._create_container(
            name,
            self.images.base,
            argv,
            ports={f"{port}/tcp": (HOST, port)},
            volumes=volumes,
            user=user or f"{os.getuid()}:{os.getgid()}",
            environment=environment or {},
            init=True,
        )
        _start(container, name)

        def gone() -> str | None:
            container.reload()
            if container.status in ("created", "running"):
                return None
            return f"its container is {container.status}; its last lines:\n{_logs(container, 10)}"

        url = f"http://{HOST}:{port}"
        wait(url, gone)
        return container, url

    def otlp_address(self, otlp_port: int) -> str:
        return f"{JAEGER}:{otlp_port}"  # on the run network

    def harness_address(self) -> str | None:
        """The run network's gateway: this machine, as the containers on it see it (None when
        the engine runs elsewhere, where nothing of ours could listen on it)."""
        try:
            network = self._client.networks.get(self.network_name)
            gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        except Exception:  # an engine without IPAM details: no harness metrics, nothing worse
            return None
        return str(gateway) if gateway and is_local_address(str(gateway)) else None

    def proxy_address(self, port: int, *, from_checks: bool) -> str:
        if not from_checks:
            return f"{TOXIPROXY}:{port}"
        if self.direct:
            return f"{self._toxiproxy_address}:{port}"
        if port in self._published:
            return f"{HOST}:{port}"
        raise RunError(
            f"proxy port {port} is not published on {HOST} and this host cannot reach "
            "containers directly.\n  Hint: the environment must pass the checks' proxy ports "
            "to start_toxiproxy(seed, published=...)."
        )

    def upstream(self, service: str, port: int) -> str:
        return f"{service}:{port}"

    def direct_address(self, service: str, port: int) -> str:
        return f"{HOST}:{port}"  # published at the same number by start_service

    # -- services ------------------------------------------------------------------------------
    def start_service(
        self, spec: ServiceSpec, env: Mapping[str, str], port: int
    ) -> ContainerService:
        assert self.images is not None
        command = ["python3" if arg in ("python", "python3") else arg for arg in spec.command]
        environment = {
            **env,
            "PATH": CONTAINER_PATH,  # the host's PATH (a venv) means nothing in the image
            "HOME": "/tmp",  # the host's HOME is not mounted; the user may have no passwd entry
            RUN_ENV: self.run.id,
            OWNER_ENV: Owner.me().label(),
        }
        mounts = {str(self.run.dir): {"bind": str(self.run.dir), "mode": "rw"}}
        if not self.workdir.is_relative_to(self.run.dir):
            mounts[str(self.workdir)] = {"bind": str(self.workdir), "mode": "rw"}
        container = self._create_container(
            spec.name,
            self.images.base,
            command,
            ports={f"{port}/tcp": (HOST, port)},
            environment=environment,
            volumes=mounts,
            working_dir=str(self.workdir),
            # The host's user, so what the service writes under the run's folder is ours to delete.
            user=f"{os.getuid()}:{os.getgid()}",
            init=True,  # a real PID 1 that forwards signals and reaps zombies
        )
        started = self._starter.submit(_start, container, spec.name)
        service = ContainerService(self, spec, port, container, started)
        service.env = dict(env)
        self._services[spec.name] = service
        return service

    def handle(self, service: str) -> ContainerService:
        return self._services[service]

    def crash(self, service: str) -> None:
        handle = self._started(service)
        _kill(handle.container)
        handle.paused = False

    def pause(self, service: str) -> None:
        from docker.errors import APIError  # noqa: PLC0415

        handle = self._started(service)
        try:
            handle.container.pause()
        except APIError as exc:
            raise RunError(
                f"cannot pause '{service}': {exc.explanation or exc} (exit code "
                f"{handle.exit_code()}).\n  Hint: a crashed service comes back with restart."
            ) from exc
        handle.paused = True

    def resume(self, service: str) -> None:
        handle = self._started(service)
        if handle.paused:
            handle.container.unpause()
        handle.paused = False

    def is_paused(self, service: str) -> bool:
        return self._services[service].paused

    def terminate(self, service: str, grace: float) -> Stopped:
        handle = self._started(service)
        began = time.monotonic()
        if handle.paused:
            handle.container.unpause()
            handle.paused = False
        # The engine sends the image's stop signal (SIGTERM; tini hands it to the service),
        # then SIGKILL after whole seconds of grace.
        handle.container.stop(timeout=max(1, math.ceil(grace)))
        code = int(handle.container.wait(timeout=grace + 10)["StatusCode"])
        took = time.monotonic() - began
        return Stopped(code, code == KILLED and took >= grace, took)

    def restart(self, service: str, env: Mapping[str, str] | None = None) -> ContainerService:
        handle = self._services[service]
        with contextlib.suppress(RunError):  # a failed first start: start it again below
            handle.wait_started()
        _kill(handle.container)
        handle.paused = False
        if env:  # a container's environment is fixed: a new one, with the old one's output
            stamped = [*handle.earlier_stamped, *_logs(handle.container).splitlines()]
            lines = handle.log_lines()
            handle.container.remove(force=True)
            fresh = self.start_service(handle.spec, {**handle.env, **env}, handle.port)
            fresh.earlier_stamped, fresh.earlier_lines = stamped, lines
            fresh.wait_started()
            return fresh
        _start(handle.container, service)
        handle.refresh()
        return handle

    # -- cleanup -------------------------------------------------------------------------------
    def close(self) -> None:
        """Keep the logs, then remove every container and the network of the run. Idempotent."""
        if self._closed:
            return
        self._closed = True
        removed = False
        try:
            self._starter.shutdown(wait=True, cancel_futures=True)
            self._save_logs()
            remove_run(self._client, self.run.id)
            removed = True
        except Exception as exc:  # the engine went away: leave the rest to the watchdog
            print(
                f"chaoslab: could not remove the containers of run {self.run.id} ({exc}); "
                "the next run removes them.",
                file=sys.stderr,
            )
        finally:
            self._services.clear()
            self._toxiproxy = None
            self._prometheus = None
            self._jaeger = None
            self._postgres = None
            if self._watchdog is not None:
                if removed:
                    self._watchdog.kill()  # its work is done; closing its pipe would wake it
                    self._watchdog.wait()
                elif self._watchdog.stdin is not None:
                    self._watchdog.stdin.close()  # wakes it: one more try, on its own
                self._watchdog = None
            self._client.close()

    # -- internals -----------------------------------------------------------------------------
    def _labels(self, service: str | None = None) -> dict[str, str]:
        labels = {
            RUN_LABEL: self.run.id,
            USER_LABEL: str(os.getuid()),
            OWNER_LABEL: Owner.me().label(),
        }
        if service is not None:
            labels[SERVICE_LABEL] = service
        return labels

    def _started(self, service: str) -> ContainerService:
        handle = self._services[service]
        handle.wait_started()
        return handle

    def _create_container(self, name: str, image: str, command: list[str], **options: Any) -> Any:
        """Create (not start) a container on the run network, reachable there as `name`."""
        from docker.errors import APIError  # noqa: PLC0415

        endpoint = self._client.api.create_endpoint_config(aliases=[name])
        try:
            with signals_deferred():  # see harness.signals: cut mid-request, it would outlive us
                return self._client.containers.create(
                    image,
                    command,
                    name=f"chaoslab-{self.run.id}-{name}",
                    hostname=name,
                    labels=self._labels(name),
                    network=self.network_name,
                    networking_config={self.network_name: endpoint},
                    **options,
                )
        except APIError as exc:
            raise RunError(
                f"cannot create the container of '{name}' ({image} {' '.join(command)}): "
                f"{exc.explanation or exc}.\n  Hint: is an old run still around? 'docker ps -a "
                f"--filter label={RUN_LABEL}' lists every chaoslab container."
            ) from exc

    def _save_logs(self) -> None:
        """Each container's output into the run's logs folder, where the environment keeps it."""
        logs = self.run.dir / "logs"
        if not self.run.dir.is_dir():
            return
        logs.mkdir(exist_ok=True)
        named = [(name, h.container) for name, h in self._services.items()]
        earlier = {name: h.earlier_stamped for name, h in self._services.items()}
        if self._toxiproxy is not None:
            named.append((TOXIPROXY, self._toxiproxy))
        if self._prometheus is not None:
            named.append((PROMETHEUS, self._prometheus))
        if self._jaeger is not None:
            named.append((JAEGER, self._jaeger))
        if self._postgres is not None:
            named.append((POSTGRES, self._postgres))
        for name, container in named:
            with contextlib.suppress(Exception):  # a container already gone has no logs to keep
                lines = [*earlier.get(name, []), *_logs(container).splitlines()]
                (logs / f"{name}.log").write_text("\n".join(lines))


# -- helpers -------------------------------------------------------------------------------------
def _address_on(container: Any, network: str) -> str:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    return str((networks.get(network) or {}).get("IPAddress") or "")


def _published_port(container: Any, port: int) -> int:
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in (HOST, "0.0.0.0", ""):
            return int(binding["HostPort"])
    raise RunError(f"port {port} of {container.name} is not published")


def _start(container: Any, name: str) -> None:
    from docker.errors import APIError  # noqa: PLC0415

    try:
        container.start()
    except APIError as exc:
        raise RunError(
            f"the container of '{name}' did not start: {exc.explanation or exc}.\n"
            "  Hint: the first word of the service's command must exist in the image "
            "('python' is the image's python3)."
        ) from exc


def _logs(container: Any, tail: int | None = None) -> str:
    from docker.errors import DockerException  # noqa: PLC0415

    try:
        raw = container.logs(tail=tail if tail is not None else "all", timestamps=True)
    except DockerException:
        return ""
    return "\n".join(
        _local_stamp(line) for line in bytes(raw).decode(errors="replace").splitlines()
    )


def _local_stamp(line: str) -> str:
    """Docker's `2026-11-29T03:56:30.077123456Z text` as the process backend writes it
    (`03:56:30.077 text`, local time), so that `chaoslab logs` merges both alike."""
    when, _, text = line.partition(" ")
    try:
        at = datetime.fromisoformat(when[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return line
    return stamp(at).decode() + text


def _kill(container: Any) -> None:
    """SIGKILL the container (paused or not) and wait until the engine sees it exited."""
    from docker.errors import APIError  # noqa: PLC0415

    container.reload()
    if container.status == "paused":
        # A frozen cgroup cannot take SIGKILL until thawed; thaw and kill back to back.
        with contextlib.suppress(APIError):
            container.unpause()
    if container.status in ("running", "paused"):
        with contextlib.suppress(APIError):  # it may have exited on its own meanwhile
            container.kill()
    container.wait(timeout=10)


def remove_run(client: Any, run_id: str) -> None:
    """Remove every container, then the network, labelled with `run_id`."""
    _remove_labelled(
        client, lambda labels: labels.get(RUN_LABEL) == run_id, f"{RUN_LABEL}={run_id}"
    )


def _remove_labelled(
    client: Any, doomed: Callable[[Mapping[str, str]], bool], label_filter: str
) -> None:
    from docker.errors import APIError, NotFound  # noqa: PLC0415

    # Sparse: one listing, no inspect per container. A full listing inspects each one, and a
    # container that another run removes meanwhile would fail this reap with a 404.
    containers = [
        c
        for c in client.containers.list(all=True, sparse=True, filters={"label": label_filter})
        if doomed(c.attrs.get("Labels") or {})
    ]

    def remove(container: Any) -> None:
        with contextlib.suppress(NotFound):
            try:
                container.remove(force=True, v=True)
            except APIError:  # "removal already in progress" from a concurrent reaper
                time.sleep(0.2)
                container.remove(force=True, v=True)

    if containers:
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            list(pool.map(remove, containers))
    for network in client.networks.list(filters={"label": label_filter}):
        if doomed(network.attrs.get("Labels") or {}):
            with contextlib.suppress(NotFound):
                try:
                    network.remove()
                except APIError:  # an endpoint the engine is still releasing: once more
                    time.sleep(0.5)
                    network.remove()


# -- reaping ------------------------------------------------------------------------------------
_reaped = False


def reap_leftovers() -> None:
    """The reaper `harness.runs` calls: remove this user's containers and networks whose
    owner is provably dead (never those of a run merely unknown to this harness)."""
    global _reaped
    _reaped = True
    try:
        client = connect(timeout=10)
    except SetupError:
        return  # no engine, nothing of ours can be running in it
    with contextlib.closing(client):
        _remove_labelled(
            client,
            _owner_dead,
            f"{USER_LABEL}={os.getuid()}",
        )


def _owner_dead(labels: Mapping[str, str]) -> bool:
    owner = Owner.parse(labels.get(OWNER_LABEL))
    return owner is not None and owner.provably_dead()


def _reap_once() -> None:
    # The first run in a process is created before this module is imported, so its reaping
    # missed the containers; reap once more now that the reaper is registered.
    if not _reaped:
        reap_stale()


register_reaper(reap_leftovers)

# Runs apart from the harness and waits for its pipe to close: at EOF the harness has died (a
# normal close kills the watchdog first), so it removes what the run left. It imports the SDK
# only then, so it costs nothing while the run is alive.
_WATCHDOG = """
import sys
sys.stdin.buffer.read()
import docker
label = "chaoslab.run=" + sys.argv[1]
client = docker.from_env(timeout=30)
for container in client.containers.list(all=True, sparse=True, filters={"label": label}):
    try:
        container.remove(force=True, v=True)
    except Exception:
        pass
for network in client.networks.list(filters={"label": label}):
    try:
        network.remove()
    except Exception:
        pass
"""


def _start_watchdog(run_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, run_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal must not kill it before it is needed
    )


def labelled(client: Any, run_id: str) -> tuple[list[str], list[str]]:
    """(container names, network names) labelled with `run_id`: what tests assert is gone."""
    label = {"label": f"{RUN_LABEL}={run_id}"}
    containers = [c.name for c in client.containers.list(all=True, filters=label)]
    networks = [n.name for n in client.networks.list(filters=label)]
    return containers, networks
