"""The docker backend's images, built on this machine without a registry.

- base: a Debian root filesystem made with `debootstrap` (bookworm + python3) and `docker
  import`ed, or `$CHAOSLAB_BASE_IMAGE` (e.g. python:3.11-slim) for those with a registry; on top,
  the services' wheels from a wheelhouse that `pip download` filled on the host, installed
  offline, and the chaoslab project as a wheel built on the host (docker/base.Dockerfile).
- toxiproxy: the static `toxiproxy-server` that `make setup` built, in an image FROM scratch
  (docker/toxiproxy.Dockerfile), or `$CHAOSLAB_TOXIPROXY_IMAGE`.

Every image is tagged with a digest of what went into it and is built only when that tag is
missing, so the first run on a machine pays for the build and every later run reuses it. Older
tags are left alone (a run of another checkout may be using one); they share every layer but the
project's wheel, so they cost little ('docker image prune' and 'docker rmi' take them). The
root filesystem (as a tarball), the .deb cache and the wheelhouse live under the per-user cache.
`python -m harness.images` builds them ahead of time and prints how long it took.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._errors import SetupError
from harness.lab import PROJECT_ROOT
from harness.signals import signals_deferred
from harness.tools import cache_root, find_toxiproxy

BASE_IMAGE_ENV = "CHAOSLAB_BASE_IMAGE"
TOXIPROXY_IMAGE_ENV = "CHAOSLAB_TOXIPROXY_IMAGE"
MIRROR_ENV = "CHAOSLAB_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
ROOTFS_PACKAGES = ("python3",)
# What the lab services import; pinned to the versions on the host, so both backends run the same.
SERVICE_REQUIREMENTS = (
    "starlette",
    "uvicorn",
    "httpx",
    "tenacity",
    "prometheus-client",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "pyjwt",
    "cryptography",
    "psycopg",
    "psycopg-binary",  # libpq inside the wheel: the base image has no libpq of its own
)
IMAGE_LABEL = "chaoslab.image"
_GLIBC_MINORS = (36, 34, 28, 17)  # manylinux tags the base image (Debian 12) runs
DOCKER_DIR = PROJECT_ROOT / "docker"
# What goes into the project's wheel; their digest decides whether the base image is rebuilt.
# README.md only feeds the wheel's metadata, so editing it does not rebuild the image.
_PROJECT_FILES = ("pyproject.toml",)
_WHEEL_EXTRAS = ("README.md",)
_PROJECT_PACKAGE = "harness"
# Bump when the recipe of the root filesystem changes, so old tarballs are not reused.
_ROOTFS_RECIPE = "1"
_ROOTFS_JUNK = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
)

Progress = Callable[[str], None]
# Stable names for docker-compose.yml; the harness itself uses the digest tags.
COMPOSE_BASE = "chaoslab-base:local"
COMPOSE_TOXIPROXY = "chaoslab-toxiproxy:local"
COMPOSE_PROMETHEUS = "chaoslab-prometheus:local"
COMPOSE_JAEGER = "chaoslab-jaeger:local"
COMPOSE_POSTGRES = "chaoslab-postgres:local"
# Where PostgreSQL's template and libraries are in a container (mounted, or in the image).
POSTGRES_HOME = "/opt/chaoslab-postgres"
POSTGRES_TEMPLATE = f"{POSTGRES_HOME}/template"


def say(message: str) -> None:
    """Default progress: one line on stderr, since a cold build takes minutes."""
    print(f"chaoslab: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Images:
    """The two images a docker run needs, as references the engine knows."""

    base: str
    toxiproxy: str


def ensure_images(client: Any, progress: Progress = say) -> Images:
    """Both images, built if missing. One build at a time per machine (a file lock)."""
    with _build_lock():
        return Images(ensure_base_image(client, progress), ensure_toxiproxy_image(client, progress))


# -- base image ----------------------------------------------------------------------------------
def ensure_base_image(client: Any, progress: Progress = say) -> str:
    """The image lab services run in: root + wheelhouse + the project, tagged by their digest."""
    root = _root_image(client, progress)
    root_id = client.images.get(root).id
    requirements = pinned_requirements()
    dockerfile = DOCKER_DIR / "base.Dockerfile"
    tag = "chaoslab-base:" + digest(root_id, *requirements, _read(dockerfile), project_digest())
    if _exists(client, tag):
        return tag
    started = time.monotonic()
    progress(f"building the services' image {tag} (once per change of the harness) ...")
    python, machine = _probe_python(client, root)
    wheels = ensure_wheelhouse(requirements, python, machine, progress)
    with tempfile.TemporaryDirectory(prefix="chaoslab-image-") as tmp:
        context = Path(tmp)
        _link_tree(wheels, context / "wheels")
        build_project_wheel(context / "dist")
        shutil.copy2(dockerfile, context / "Dockerfile")
        _build(client, context, tag, {"BASE": root})
    progress(f"built {tag} in {time.monotonic() - started:.1f} s")
    return tag


def _root_image(client: Any, progress: Progress) -> str:
    configured = os.environ.get(BASE_IMAGE_ENV)
    if configured:
        return _ensure_present(client, configured, BASE_IMAGE_ENV)
    return ensure_rootfs_image(client, progress)


def pinned_requirements(names: Iterable[str] = SERVICE_REQUIREMENTS) -> list[str]:
    """`name==version` as installed on the host (a name alone if it is not installed)."""
    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def project_digest(root: Path = PROJECT_ROOT) -> str:
    """A digest of the sources that make the project's wheel."""
    return digest(*(f"{p.relative_to(root)}\0{p.read_bytes().hex()}" for p in _project_files(root)))


def _project_files(root: Path) -> list[Path]:
    files = [root / name for name in _PROJECT_FILES if (root / name).is_file()]
    package = root / _PROJECT_PACKAGE
    files += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def build_project_wheel(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """The project as a wheel, built from a copy so the source tree gets no build/ folder."""
    if not (root / "pyproject.toml").is_file():
        raise SetupError(
            f"cannot build the chaoslab wheel: no pyproject.toml in {root}.\n"
            "  Fix: run chaoslab from its source checkout (make setup installs it from there)."
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chaoslab-src-") as tmp:
        source = Path(tmp)
        extras = [root / name for name in _WHEEL_EXTRAS if (root / name).is_file()]
        for path in [*_project_files(root), *extras]:
            target = source / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        _run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dest), tmp],
            "pip wheel (the chaoslab project)",
            fix="check that PyPI is reachable (pip fetches setuptools to build the wheel)",
        )
    return next(dest.glob("*.whl"))


def ensure_wheelhouse(
    requirements: list[str], python: str, machine: str, progress: Progress = say
) -> Path:
    """A folder of wheels for `python` (3.11) on `machine` (x86_64), pip's own wheel included."""
    wanted = ["pip", *requirements]
    house = cache_root() / "docker" / "wheels" / digest(python, machine, *wanted)
    done = house / "requirements.txt"  # written last: its presence means the folder is complete
    if done.is_file():
        return house
    progress(f"downloading the services' wheels for Python {python} ({machine}) ...")
    house.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="partial-", dir=house.parent))
    try:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--dest",
                str(partial),
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                python,
                # pip takes only the tags it is given: the image's glibc (2.36) and the
                # older ones wheels are built for (cryptography's are manylinux_2_34).
                *(
                    arg
                    for tag in (*(f"manylinux_2_{v}" for v in _GLIBC_MINORS), "linux")
                    for arg in ("--platform", f"{tag}_{machine}")
                ),
                *wanted,
            ],
            "pip download (the services' wheels)",
            fix="check that PyPI (or your PIP_INDEX_URL) is reachable",
        )
        (partial / "requirements.txt").write_text("\n".join(wanted) + "\n")
        shutil.rmtree(house, ignore_errors=True)
        partial.rename(house)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return house


def _probe_python(client: Any, image: str) -> tuple[str, str]:
    """(major.minor, machine) of the image's python3, so the wheels fit it."""
    script = "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine())"
    try:
        with signals_deferred():  # cut before its remove, the probe container would stay
            out = client.containers.run(
                image, ["python3", "-c", script], remove=True, labels={IMAGE_LABEL: "probe"}
            )
    except Exception as exc:  # docker's ContainerError, ImageNotFound, APIError
        raise SetupError(
            f"the base image {image} has no working python3: {exc}.\n"
            f"  Fix: point {BASE_IMAGE_ENV} at an image with python3 (e.g. python:3.11-slim)."
        ) from exc
    python, machine = out.decode().split()
    return python, machine


# -- root filesystem (debootstrap) ---------------------------------------------------------------
def ensure_rootfs_image(client: Any, progress: Progress = say) -> str:
    """A Debian bookworm with python3, from debootstrap and `docker import`; cached as a tarball."""
    arch = _dpkg_arch()
    key = digest(SUITE, arch, *ROOTFS_PACKAGES, _ROOTFS_RECIPE)
    tag = f"chaoslab-rootfs:{key}"
    if _exists(client, tag):
        return tag
    tarball = cache_root() / "docker" / "rootfs" / f"{SUITE}-{arch}-{key}.tar"
    if not tarball.is_file():
        debootstrap(tarball, arch, progress)
    progress(f"importing {tarball.name} as {tag} ...")
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"LABEL {IMAGE_LABEL}=rootfs",
        'CMD ["python3"]',
    ]
    name, _, version = tag.partition(":")
    client.api.import_image_from_file(str(tarball), repository=name, tag=version, changes=changes)
    return tag


def debootstrap(tarball: Path, arch: str, progress: Progress = say) -> None:
    """Make the root filesystem with debootstrap and pack it into `tarball`."""
    tool = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").is_file() else None
    )
    if tool is None or os.geteuid() != 0:
        why = "debootstrap is not installed" if tool is None else "debootstrap needs root"
        raise SetupError(
            f"cannot build the base image: {why}.\n"
            "  Fix: run 'sudo scripts/docker-engine.sh' (it installs debootstrap) and then\n"
            "  'sudo python -m harness.images', or set CHAOSLAB_BASE_IMAGE to an image you can\n"
            "  pull (e.g. python:3.11-slim), or use --backend process."
        )
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    work = tarball.parent
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{SUITE}-", dir=work))
    started = time.monotonic()
    progress(f"making a Debian {SUITE} root filesystem with debootstrap (a few minutes, once) ...")
    try:
        _run(
            [
                tool,
                "--variant=minbase",
                f"--arch={arch}",
                f"--include={','.join(ROOTFS_PACKAGES)}",
                f"--cache-dir={debs}",
                SUITE,
                str(target),
                mirror,
            ],
            "debootstrap",
            fix=f"check that {mirror} is reachable (or set {MIRROR_ENV} to a Debian mirror)",
        )
        for junk in _ROOTFS_JUNK:
            _empty(target / junk)
        partial = tarball.with_suffix(".partial")
        _run(
            ["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."],
            "tar (the root filesystem)",
            fix="check the free space in the cache folder",
        )
        partial.replace(tarball)
    finally:
        _remove_rootfs(target)
    progress(f"root filesystem ready in {time.monotonic() - started:.0f} s ({tarball})")


def _dpkg_arch() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        ).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _empty(folder: Path) -> None:
    if folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _remove_rootfs(target: Path) -> None:
    """Remove a debootstrap target, never following a mount left inside it (proc, sys, dev)."""
    for mount in sorted(_mounts_under(target), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    if _mounts_under(target):
        return  # leave it rather than delete through a mount; the next build uses a new folder
    shutil.rmtree(target, ignore_errors=True)


def _mounts_under(folder: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(folder.resolve())
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


# -- toxiproxy image -----------------------------------------------------------------------------
def ensure_toxiproxy_image(client: Any, progress: Progress = say) -> str:
    """Toxiproxy as an image: `$CHAOSLAB_TOXIPROXY_IMAGE`, else the local binary FROM scratch."""
    configured = os.environ.get(TOXIPROXY_IMAGE_ENV)
    if configured:
        return _ensure_present(client, configured, TOXIPROXY_IMAGE_ENV)
    binary = find_toxiproxy()
    dockerfile = DOCKER_DIR / "toxiproxy.Dockerfile"
    tag = "chaoslab-toxiproxy:" + digest(_read(dockerfile), binary.read_bytes().hex())
    if _exists(client, tag):
        return tag
    if not is_static(binary):
        raise SetupError(
            f"{binary} is dynamically linked, so it cannot run in an image FROM scratch.\n"
            "  Fix: run 'make setup' (it builds a static toxiproxy-server, CGO disabled) and\n"
            f"  unset CHAOSLAB_TOXIPROXY, or set {TOXIPROXY_IMAGE_ENV} to a Toxiproxy image."
        )
    progress(f"building {tag} from {binary} ...")
    with tempfile.TemporaryDirectory(prefix="chaoslab-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(binary, context / "toxiproxy-server")
        shutil.copy2(dockerfile, context / "Dockerfile")
        _build(client, context, tag, {})
    return tag


def is_static(binary: Path) -> bool:
    """True when an ELF executable asks for no program interpreter (no PT_INTERP header)."""
    with binary.open("rb") as handle:
        head = handle.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF":
            return False
        wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
        if wide:
            phoff, phentsize, phnum = (
                struct.unpack_from(f"{order}Q", head, 0x20)[0],
                *struct.unpack_from(f"{order}HH", head, 0x36),
            )
        else:
            phoff, phentsize, phnum = (
                struct.unpack_from(f"{order}I", head, 0x1C)[0],
                *struct.unpack_from(f"{order}HH", head, 0x2A),
            )
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    pt_interp = 3
    return all(
        struct.unpack_from(f"{order}I", table, i * phentsize)[0] != pt_interp for i in range(phnum)
    )


# -- helpers -------------------------------------------------------------------------------------
def digest(*parts: str) -> str:
    """A short content hash: 12 hex digits of SHA-256 over the parts."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode())
        sha.update(b"\0")
    return sha.hexdigest()[:12]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise SetupError(
            f"cannot read {path}: {exc}.\n"
            "  Fix: run chaoslab from its source checkout, where docker/ holds the Dockerfiles."
        ) from exc


def _exists(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound  # noqa: PLC0415 - docker is imported lazily

    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def _ensure_present(client: Any, ref: str, variable: str) -> str:
    """`ref` if the engine has it, else pulled; a clear error when it cannot be."""
    if _exists(client, ref):
        return ref
    from docker.errors import DockerException  # noqa: PLC0415

    say(f"pulling {ref} ({variable}) ...")
    try:
        client.images.pull(ref)
    except DockerException as exc:
        raise SetupError(
            f"{variable}={ref}: the engine does not have this image and could not pull it "
            f"({exc}).\n  Fix: 'docker pull {ref}' where a registry is reachable (or 'docker "
            f"load' it), or unset {variable} to build the image locally."
        ) from exc
    return ref


def _build(client: Any, context: Path, tag: str, buildargs: dict[str, str]) -> None:
    from docker.errors import BuildError  # noqa: PLC0415

    try:
        client.images.build(
            path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False
        )
    except BuildError as exc:
        lines = [str(c.get("stream") or c.get("error") or "").rstrip() for c in exc.build_log]
        tail = "\n".join(f"    {line}" for line in [x for x in lines if x][-15:])
        raise SetupError(
            f"docker build of {tag} failed: {exc.msg}\n  Last lines of the build:\n{tail}"
        ) from exc


def _link_tree(source: Path, dest: Path) -> None:
    """Hard links where possible (same filesystem), copies otherwise."""
    dest.mkdir(parents=True)
    for path in source.iterdir():
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copy2(path, dest / path.name)


def _run(argv: list[str], what: str, *, fix: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SetupError(f"{what} failed (exit code {result.returncode}):\n{tail}\n  Fix: {fix}.")


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    path = cache_root() / "docker" / "build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_prometheus_image(client: Any, base: str, progress: Progress = say) -> str | None:
    """Prometheus in the base image, for docker-compose.yml (the docker backend mounts the
    binary instead); None where no Prometheus is at hand."""
    from harness.metrics import find_prometheus  # noqa: PLC0415

    found = find_prometheus()
    if found is None:
        return None
    dockerfile = DOCKER_DIR / "prometheus.Dockerfile"
    stat = found.server.stat()
    tag = "chaoslab-prometheus:" + digest(
        _read(dockerfile), base, found.version, str(stat.st_size), str(stat.st_mtime_ns)
    )
    if _exists(client, tag):
        return tag
    progress(f"building {tag} from {found.server} ...")
    with tempfile.TemporaryDirectory(prefix="chaoslab-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(found.server, context / "prometheus")
        shutil.copy2(found.promtool, context / "promtool")
        shutil.copy2(dockerfile, context / "Dockerfile")
        _build(client, context, tag, {"BASE": base})
    return tag


def ensure_jaeger_image(client: Any, progress: Progress = say) -> str | None:
    """Jaeger alone in an image (a static binary), for docker-compose.yml (the docker backend
    mounts the binary instead); None where no Jaeger is at hand."""
    from harness.tracing import find_jaeger  # noqa: PLC0415

    found = find_jaeger()
    if found is None:
        return None
    dockerfile = DOCKER_DIR / "jaeger.Dockerfile"
    stat = found.binary.stat()
    tag = "chaoslab-jaeger:" + digest(_read(dockerfile), str(stat.st_size), str(stat.st_mtime_ns))
    if _exists(client, tag):
        return tag
    progress(f"building {tag} from {found.binary} ...")
    with tempfile.TemporaryDirectory(prefix="chaoslab-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(found.binary, context / "jaeger")
        shutil.copy2(dockerfile, context / "Dockerfile")
        _build(client, context, tag, {})
    return tag


def ensure_postgres_image(client: Any, base: str, progress: Progress = say) -> str | None:
    """PostgreSQL in the base image, for docker-compose.yml (the docker backend mounts the
    host's installation instead); None where no PostgreSQL is at hand."""
    from harness.postgres.program import (  # noqa: PLC0415
        ensure_libraries,
        ensure_template,
        find_postgres,
    )

    found = find_postgres()
    if found is None:
        return None
    dockerfile = DOCKER_DIR / "postgres.Dockerfile"
    stat = found.server.stat()
    tag = "chaoslab-postgres:" + digest(
        _read(dockerfile), base, found.version, str(stat.st_size), str(stat.st_mtime_ns)
    )
    if _exists(client, tag):
        return tag
    progress(f"building {tag} from {found.libdir} ...")
    template, libraries = ensure_template(found), ensure_libraries(found)
    with tempfile.TemporaryDirectory(prefix="chaoslab-image-") as tmp:
        context = Path(tmp)
        for folder in (found.libdir, found.sharedir):
            shutil.copytree(folder, context / "install" / folder.relative_to("/"), symlinks=True)
        launcher = context / "install" / "usr" / "local" / "bin" / "postgres"
        launcher.parent.mkdir(parents=True)
        launcher.write_text(f'#!/bin/sh\nexec {found.server} "$@"\n')  # on PATH, any version
        launcher.chmod(0o755)
        shutil.copytree(libraries, context / "lib")
        shutil.copytree(template, context / "template", symlinks=True)
        shutil.copy2(dockerfile, context / "Dockerfile")
        _build(client, context, tag, {"BASE": base})
    return tag


def main() -> int:
    """Build both images now (setup, CI): prints what was built and how long it took."""
    from harness.backends.docker import connect  # noqa: PLC0415 - one way to reach the engine

    started = time.monotonic()
    try:
        with contextlib.closing(connect(timeout=600)) as client:
            images = ensure_images(client)
            prometheus = ensure_prometheus_image(client, images.base)
            jaeger = ensure_jaeger_image(client)
            postgres = ensure_postgres_image(client, images.base)
            aliases = [(images.base, COMPOSE_BASE), (images.toxiproxy, COMPOSE_TOXIPROXY)]
            if prometheus is not None:
                aliases.append((prometheus, COMPOSE_PROMETHEUS))
            if jaeger is not None:
                aliases.append((jaeger, COMPOSE_JAEGER))
            if postgres is not None:
                aliases.append((postgres, COMPOSE_POSTGRES))
            for ref, alias in aliases:
                name, _, tag = alias.partition(":")
                client.images.get(ref).tag(name, tag)  # the stable names docker-compose.yml uses
    except SetupError as exc:
        print(f"chaoslab: {exc}", file=sys.stderr)
        return 1
    print(f"base: {images.base} (also {COMPOSE_BASE})")
    print(f"toxiproxy: {images.toxiproxy} (also {COMPOSE_TOXIPROXY})")
    if prometheus is not None:
        print(f"prometheus: {prometheus} (also {COMPOSE_PROMETHEUS})")
    if jaeger is not None:
        print(f"jaeger: {jaeger} (also {COMPOSE_JAEGER})")
    if postgres is not None:
        print(f"postgres: {postgres} (also {COMPOSE_POSTGRES})")
    print(f"ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
