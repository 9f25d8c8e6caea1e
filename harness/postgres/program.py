"""Find the real PostgreSQL a lab with a database runs, and prepare what each run copies.

Order: `$CHAOSLAB_POSTGRES` (a `bin` folder, or its `postgres`), `postgres` on PATH, then
Debian's layout (`/usr/lib/postgresql/<major>/bin`, newest first). Where none is found,
`make setup` (or the first lab that needs one) installs Debian's package when it runs as root
with apt-get (as `make docker-setup` does for the engine); anywhere else it says how.

What every run needs, prepared once per version in the per-user cache:
- `template/`: a data folder made by `initdb` (superuser `chaoslab`, trust from every address
  it listens on, which is only loopback or a run's private network; C locale), which each run
  copies (0.1 s) instead of running `initdb` (0.7 s and up);
- `lib/`: the shared libraries `postgres` links to, but not the C library's own, which the
  docker backend mounts into a container of the base image (Debian 12, as the host) so the
  host's build runs there unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness._errors import SetupError
from harness.runs import unprivileged_ids
from harness.tools import cache_root

ENV = "CHAOSLAB_POSTGRES"
SUPERUSER = "chaoslab"
DATABASE = "chaoslab"
INSTALL_HINT = (
    "install PostgreSQL 13 or later: 'apt-get install postgresql' on Debian or Ubuntu, or set "
    f"${ENV} to the folder that holds its 'postgres' and 'initdb'"
)
# The C library's own: the container's (same Debian release) must be used, never a copy.
_LIBC = re.compile(r"^(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^.]*)\.so")
_TEMPLATE_RECIPE = "3"  # bump when the template's recipe changes


@dataclass(frozen=True)
class Postgres:
    """One PostgreSQL installation: its `bin` folder, share folder and version."""

    bindir: Path
    sharedir: Path
    version: str  # "15.18"

    @property
    def server(self) -> Path:
        return self.bindir / "postgres"

    @property
    def libdir(self) -> Path:
        """The installation's own folder (`bin` and `lib` of PostgreSQL), e.g.
        /usr/lib/postgresql/15: what a container mounts besides the share folder."""
        return self.bindir.parent

    @property
    def cache(self) -> Path:
        return cache_root() / "postgres" / f"{self.version}-{_TEMPLATE_RECIPE}"


def find_postgres() -> Postgres | None:
    """The PostgreSQL to run, if one is here; a bad `$CHAOSLAB_POSTGRES` is a SetupError."""
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured)
        bindir = path.parent if path.name == "postgres" else path
        found = _describe(bindir)
        if found is None:
            raise SetupError(
                f"${ENV} is {configured}, where no runnable 'postgres' and 'initdb' are.\n"
                f"  Fix: {INSTALL_HINT}."
            )
        return found
    candidates = []
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)
        )
        candidates += [p / "bin" for p in majors]
    for bindir in candidates:
        found = _describe(bindir)
        if found is not None:
            return found
    return None


def install_postgres() -> Postgres:
    """The PostgreSQL to run: found, else Debian's package installed (root with apt-get only,
    saying so); a SetupError that says what to do when neither works."""
    found = find_postgres()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise SetupError(f"this lab needs PostgreSQL, and none was found.\n  Fix: {INSTALL_HINT}.")
    print("chaoslab: installing Debian's postgresql (apt-get), once per machine ...", flush=True)
    command = [apt, "install", "-y", "--no-install-recommends", "postgresql"]
    done = _apt(command)
    if done.returncode != 0:  # an old package index: refresh it once
        _apt([apt, "update"])
        done = _apt(command)
    found = find_postgres()
    if found is None:
        said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SetupError(
            f"'apt-get install postgresql' did not give a PostgreSQL ({said[0]}).\n"
            f"  Fix: {INSTALL_HINT}."
        )
    return found


def _apt(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)


def _describe(bindir: Path) -> Postgres | None:
    server, initdb = bindir / "postgres", bindir / "initdb"
    if not (server.is_file() and initdb.is_file()):
        return None
    try:
        said = subprocess.run(
            [str(server), "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)?)", said)
    if match is None or int(match.group(1).split(".")[0]) < 13:
        return None
    return Postgres(bindir, _sharedir(bindir, match.group(1)), match.group(1))


def _sharedir(bindir: Path, version: str) -> Path:
    """Where `initdb` finds its templates: pg_config says; else Debian's layout or ../share."""
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            said = subprocess.run(
                [str(pg_config), "--sharedir"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout.strip()
            if said and Path(said).is_dir():
                return Path(said)
    debian = Path("/usr/share/postgresql") / version.split(".", maxsplit=1)[0]
    return debian if debian.is_dir() else bindir.parent / "share"


# -- what every run copies ---------------------------------------------------------------------
def ensure_template(program: Postgres) -> Path:
    """The cached data folder each run copies, made by `initdb` the first time (one maker at a
    time per machine: parallel test workers wait for the first)."""
    template = program.cache / "template"
    if (template / "PG_VERSION").is_file():
        return template
    program.cache.mkdir(parents=True, exist_ok=True)
    with _locked(program.cache / ".lock"):
        if (template / "PG_VERSION").is_file():
            return template
        # initdb runs as whoever runs PostgreSQL, in a folder that user may write (for root:
        # nobody, who cannot enter root's cache): a fresh temp folder, then moved in.
        work = Path(tempfile.mkdtemp(prefix="chaoslab-initdb-"))
        try:
            data = work / "data"
            ids = unprivileged_ids()
            if ids is not None:
                os.chmod(work, 0o711)
                data.mkdir(mode=0o700)
                os.chown(data, *ids)
            done = subprocess.run(
                [str(program.bindir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                 "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"],
                capture_output=True, text=True, timeout=120, check=False,
                user=ids[0] if ids else None, group=ids[1] if ids else None,
                extra_groups=[] if ids else None, cwd=work,
            )  # fmt: skip
            if done.returncode != 0:
                raise SetupError(
                    f"initdb failed ({done.returncode}):\n{(done.stderr or done.stdout)[-1500:]}"
                    f"\n  Fix: {INSTALL_HINT}."
                )
            _make_database(program, data, ids)
            # Trust on every address it listens on: 127.0.0.1 on this machine; in a container
            # the run's private network, and the host's connections come from its gateway.
            (data / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n"
            )
            _readable_by_all(data)  # a container copies it as nobody
            partial = program.cache / "template.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(data, partial, symlinks=True)
            partial.replace(template)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return template


def _make_database(program: Postgres, data: Path, ids: tuple[int, int] | None) -> None:
    """CREATE DATABASE chaoslab in the template (single-user mode: no server, no port)."""
    done = subprocess.run(
        [str(program.server), "--single", "-D", str(data), "-c", "fsync=off", "postgres"],
        input=f"CREATE DATABASE {DATABASE};\n", capture_output=True, text=True, timeout=60,
        check=False, user=ids[0] if ids else None, group=ids[1] if ids else None,
        extra_groups=[] if ids else None, cwd=data.parent,
    )  # fmt: skip
    if done.returncode != 0:
        raise SetupError(f"could not create the template's database:\n{done.stderr[-1500:]}")


def _readable_by_all(folder: Path) -> None:
    """Folders a+rx, files a+r: what a fresh `initdb` holds is no secret, and a container's
    nobody copies it. A run's copy is its own (and its folder 0700 again)."""
    folder.chmod(0o755)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def ensure_libraries(program: Postgres) -> Path:
    """A folder of the libraries `postgres` links to (the C library's own left out), copied
    from the host once per version, for a container to find them on LD_LIBRARY_PATH."""
    folder = program.cache / "lib"
    if (folder / ".complete").is_file():
        return folder
    program.cache.mkdir(parents=True, exist_ok=True)
    with _locked(program.cache / ".lock"):
        if (folder / ".complete").is_file():
            return folder
        listed = subprocess.run(
            ["ldd", str(program.server)], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        partial = program.cache / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for name, path in re.findall(r"^\s*(\S+) => (/\S+)", listed, flags=re.MULTILINE):
            if not _LIBC.match(name):
                shutil.copy2(path, partial / name)  # follows the symlink to the real file
        (partial / ".complete").touch()
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)
    return folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
