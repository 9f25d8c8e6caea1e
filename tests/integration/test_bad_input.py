"""Every bad input gets a clear error and the right exit code (0 pass, 1 a check failed, 2 could
not run): no traceback, a message that says what is wrong and what to do, nothing left running.

Each case copies the fixture lab `ping` into tmp_path and breaks one thing (or passes one bad
argument, variable or status file); most never start a lab, so the table stays fast.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.runs import is_live, labelled_processes, registry
from harness.tools import find_toxiproxy
from tests.conftest import FIXTURE_LABS, chaoslab_command, child_env

pytestmark = pytest.mark.integration

Breaker = Callable[[Path, contextlib.ExitStack], None]  # (the lab copy, cleanups)


@dataclass(frozen=True)
class Case:
    """One bad input: the command, what it must say, and how to break the world first."""

    args: tuple[str, ...]  # "{lab}", "{labs}", "{tmp}", "{port}" are filled in
    says: tuple[str, ...]  # what is wrong: every text must appear in stdout + stderr
    todo: str = "Fix:"  # what to do
    code: int = 2
    lab: Breaker | None = None  # breaks tmp/labs/ping
    env: dict[str, str] = field(default_factory=dict)
    status: str | bytes | None = None  # the content of the learner's status.json


# -- ways to break the lab copy --------------------------------------------------------------
def toml(old: str, new: str) -> Breaker:
    def apply(lab: Path, stack: contextlib.ExitStack) -> None:
        manifest = lab / "lab.toml"
        text = manifest.read_text()
        assert old in text, f"{old!r} is not in the fixture's lab.toml"
        manifest.write_text(text.replace(old, new, 1))

    return apply


def write(rel: str, content: str | bytes) -> Breaker:
    def apply(lab: Path, stack: contextlib.ExitStack) -> None:
        path = lab / rel
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return apply


def both(*breakers: Breaker) -> Breaker:
    def apply(lab: Path, stack: contextlib.ExitStack) -> None:
        for breaker in breakers:
            breaker(lab, stack)

    return apply


def remove_checks(lab: Path, stack: contextlib.ExitStack) -> None:
    shutil.rmtree(lab / "tests")


def manifest_is_a_folder(lab: Path, stack: contextlib.ExitStack) -> None:
    (lab / "lab.toml").unlink()
    (lab / "lab.toml").mkdir()


def broken_sibling(lab: Path, stack: contextlib.ExitStack) -> None:
    sibling = lab.parent / "broken"
    shutil.copytree(lab, sibling)
    (sibling / "lab.toml").write_bytes(b'[lab]\ntitle = "caf\xe9"\n')


def take_a_port(lab: Path, stack: contextlib.ExitStack) -> None:
    """Hold a port, and make `front` listen on it instead of $PORT."""
    held = stack.enter_context(socket.socket())
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    (lab / "services" / "front.py").write_text(
        "import uvicorn\nfrom starlette.applications import Starlette\n"
        f"uvicorn.run(Starlette(), host='127.0.0.1', port={port}, log_level='warning')\n"
    )
    (lab / "port").write_text(str(port))


MINIMAL = '[lab]\ntitle = "x"\nchapter = 0\nlearner_files = []\nhints = ["a", "b"]\n'
FRONT_CMD = '[services.front]\ncommand = ["python", "-m", "services.front"]\n'
BACK_READY = "ready = { port = true }"
LINK = '"front -> back" = {}'
HINTS = 'hints = ["There is nothing to fix here.", "Really."]'
CHECKS = "tests/test_ping.py"
FRONT = "services/front.py"


def _c(id_: str, *args: str, **kwargs: object) -> object:
    says = kwargs.pop("says")
    return pytest.param(
        Case(args, tuple(says) if isinstance(says, list) else (str(says),), **kwargs),  # type: ignore[arg-type]
        id=id_,
    )


CASES = [
    # -- manifests -------------------------------------------------------------------------
    _c(
        "missing-title",
        "check",
        "{lab}",
        says="[lab.title]",
        lab=toml('title = "Ping through a proxy"\n', ""),
    ),
    _c("missing-chapter", "check", "{lab}", says="[lab.chapter]", lab=toml("chapter = 0\n", "")),
    _c(
        "missing-services",
        "check",
        "{lab}",
        says=["[services]", "missing table"],
        lab=write("lab.toml", MINIMAL),
    ),
    _c(
        "chapter-is-text",
        "check",
        "{lab}",
        says="[lab.chapter]",
        lab=toml("chapter = 0", 'chapter = "zero"'),
    ),
    _c(
        "hints-not-a-list",
        "check",
        "{lab}",
        says="[lab.hints]",
        lab=toml(HINTS, 'hints = "Really."'),
    ),
    _c(
        "empty-hints",
        "check",
        "{lab}",
        says="at least two hints",
        lab=toml(HINTS, "hints = []"),
    ),
    _c(
        "blank-hint",
        "check",
        "{lab}",
        says=["[lab.hints]", "non-empty"],
        lab=toml(HINTS, 'hints = ["Look at front.", ""]'),
    ),
    _c(
        "command-is-text",
        "check",
        "{lab}",
        says="[services.front.command]",
        lab=toml('["python", "-m", "services.front"]', '"python -m services.front"'),
    ),
    _c(
        "empty-command",
        "check",
        "{lab}",
        says="empty command",
        lab=toml('["python", "-m", "services.front"]', "[]"),
    ),
    _c(
        "unknown-service-in-link",
        "check",
        "{lab}",
        says="unknown service 'ghost'",
        lab=toml(LINK, '"front -> ghost" = {}'),
    ),
    _c(
        "duplicate-link",
        "check",
        "{lab}",
        says="declared twice",
        lab=toml(LINK, LINK + '\n"front->back" = {}'),
    ),
    _c(
        "malformed-link",
        "check",
        "{lab}",
        says="not a link",
        lab=toml(LINK, '"front => back" = {}'),
    ),
    _c(
        "link-to-itself",
        "check",
        "{lab}",
        says="a link must go from",
        lab=toml(LINK, '"front -> front" = {}'),
    ),
    _c(
        "non-utf8-manifest",
        "check",
        "{lab}",
        says=["not UTF-8", "lab.toml"],
        lab=write("lab.toml", b'[lab]\ntitle = "caf\xe9"\n'),
    ),
    _c(
        "toml-syntax-error",
        "check",
        "{lab}",
        says=["not valid TOML", "line"],
        lab=toml("[links]", "[links"),
    ),
    _c(
        "ready-http-not-a-path",
        "check",
        "{lab}",
        says="[services.back.ready.http]",
        lab=toml(BACK_READY, 'ready = { http = "health" }'),
    ),
    _c(
        "ready-http-and-port",
        "check",
        "{lab}",
        says="both http and port",
        lab=toml(BACK_READY, 'ready = { port = true, http = "/health" }'),
    ),
    _c(
        "ready-timeout-negative",
        "check",
        "{lab}",
        says="[services.back.ready.timeout]",
        lab=toml(BACK_READY, "ready = { port = true, timeout = -1 }"),
    ),
    _c(
        "ready-unknown-kind",
        "check",
        "{lab}",
        says=["[services.back.ready.log]", "unknown key"],
        lab=toml(BACK_READY, 'ready = { log = "started" }'),
    ),
    _c(
        "unknown-top-level-key",
        "check",
        "{lab}",
        says=["[colour]", "unknown key"],
        lab=toml("[lab]", 'colour = "blue"\n[lab]'),
    ),
    _c(
        "learner-file-missing",
        "check",
        "{lab}",
        says="'services/nowhere.py' does not exist",
        lab=toml(
            'learner_files = ["services/front.py"]', 'learner_files = ["services/nowhere.py"]'
        ),
    ),
    _c(
        "bad-service-name",
        "check",
        "{lab}",
        says="bad service name 'Front'",
        lab=toml("[services.front]", "[services.Front]"),
    ),
    _c(
        "env-value-not-text",
        "check",
        "{lab}",
        says="[services.back.env.MODE]",
        lab=toml(BACK_READY, BACK_READY + "\nenv = { MODE = 1 }"),
    ),
    _c(
        "manifest-is-a-folder",
        "check",
        "{lab}",
        says=["lab.toml", "cannot be read"],
        lab=manifest_is_a_folder,
    ),
    # -- command-line arguments ------------------------------------------------------------
    _c("unknown-lab", "check", "raft", says="unknown lab 'raft'", todo="Run 'chaoslab list'"),
    _c("lab-name-typo", "check", "pnig", says="Did you mean 'ping'", todo="Run 'chaoslab list'"),
    _c("folder-is-not-a-lab", "check", "{tmp}", says="has no lab.toml"),
    _c("unknown-command", "frobnicate", says="invalid choice: 'frobnicate'"),
    _c("no-command", says="required"),
    _c("check-without-a-lab", "check", says="the following arguments are required: lab"),
    _c("bad-seed", "check", "ping", "--seed", "abc", says="invalid int value: 'abc'"),
    _c("bad-backend", "check", "ping", "--backend", "vm", says="invalid choice: 'vm'"),
    _c("unknown-option", "check", "ping", "--colour", says="unrecognized arguments: --colour"),
    _c(
        "variant-does-not-exist",
        "check",
        "ping",
        "--variant",
        "wrong/nope.py",
        says="no such file or folder 'wrong/nope.py'",
    ),
    _c(
        "json-into-a-missing-folder",
        "check",
        "ping",
        "--json",
        "{tmp}/no/such/verdict.json",
        says="the folder {tmp}/no/such does not exist",
    ),
    _c(
        "json-into-a-read-only-place",
        "check",
        "ping",
        "--json",
        "/sys/chaoslab-verdict.json",
        says="cannot write there",
    ),
    _c("json-is-a-folder", "check", "ping", "--json", "{tmp}", says="that is a folder"),
    _c(
        "bad-pytest-argument",
        "check",
        "ping",
        "--",
        "--colour",
        says=["refused the arguments after '--'", "--colour"],
    ),
    _c(
        "pytest-arguments-select-nothing",
        "check",
        "ping",
        "--",
        "-k",
        "no_such_check",
        says="selected no check",
    ),
    _c("hint-number-too-high", "hint", "ping", "3", says="has hints 1 to 2; there is no hint 3"),
    _c("hint-number-zero", "hint", "ping", "0", says="there is no hint 0"),
    _c("hint-number-not-a-number", "hint", "ping", "two", says="invalid int value: 'two'"),
    _c("logs-zero-lines", "logs", "ping", "-n", "0", says="'0' is not above zero"),
    _c("down-negative-grace", "down", "--grace", "-1", says="'-1' is not above zero"),
    # -- environment variables -------------------------------------------------------------
    _c(
        "labs-folder-missing-list",
        "list",
        says="no labs folder at {tmp}/nowhere",
        env={"CHAOSLAB_LABS": "{tmp}/nowhere"},
    ),
    _c(
        "labs-folder-missing-check",
        "check",
        "ping",
        says="no labs folder at {tmp}/nowhere",
        env={"CHAOSLAB_LABS": "{tmp}/nowhere"},
    ),
    _c(
        "labs-folder-is-a-file",
        "hint",
        "ping",
        says="no labs folder at {lab}/lab.toml",
        env={"CHAOSLAB_LABS": "{lab}/lab.toml"},
    ),
    _c(
        "toxiproxy-missing",
        "check",
        "{lab}",
        says="CHAOSLAB_TOXIPROXY={tmp}/nope",
        env={"CHAOSLAB_TOXIPROXY": "{tmp}/nope"},
    ),
    _c(
        "toxiproxy-not-executable",
        "check",
        "{lab}",
        says="is not a working toxiproxy-server",
        env={"CHAOSLAB_TOXIPROXY": "{lab}/lab.toml"},
    ),
    _c(
        "cache-unwritable-check",
        "check",
        "ping",
        says="cannot write to the cache folder",
        env={"XDG_CACHE_HOME": "{lab}/lab.toml"},
    ),
    _c(
        "cache-unwritable-hint",
        "hint",
        "ping",
        code=0,
        says=["Hint 1 of 2", "cannot save your progress"],
        env={"XDG_CACHE_HOME": "{lab}/lab.toml"},
    ),
    # -- the learner's status file -----------------------------------------------------------
    _c("status-not-json", "list", code=0, says="not JSON", todo="delete it", status="{oops"),
    _c(
        "status-is-a-list",
        "hint",
        "ping",
        code=0,
        says=["Hint 1 of 2", "not an object of labs"],
        todo="delete it",
        status="[1, 2]",
    ),
    _c(
        "status-entry-not-an-object",
        "list",
        code=0,
        says=["ping", "the entry of 'ping' is a int"],
        todo="delete it",
        status='{"ping": 3}',
    ),
    _c(
        "status-hints-not-a-number",
        "hint",
        "ping",
        code=0,
        says=["Hint 1 of 2", 'hints = "two"'],
        todo="delete it",
        status='{"ping": {"hints": "two"}}',
    ),
    _c(
        "status-not-utf8",
        "list",
        code=0,
        says="not JSON",
        todo="delete it",
        status=b'{"ping": "caf\xe9"}',
    ),
    # -- a broken lab beside a good one ------------------------------------------------------
    _c(
        "list-shows-a-broken-lab",
        "list",
        says=["ping", "broken", "BROKEN", "not UTF-8"],
        lab=broken_sibling,
    ),
    _c(
        "hint-beside-a-broken-lab",
        "hint",
        "ping",
        code=0,
        says="Hint 1 of 2",
        todo="again",
        lab=broken_sibling,
    ),
    # -- check files -------------------------------------------------------------------------
    _c(
        "checks-syntax-error",
        "check",
        "{lab}",
        says=["tests/test_ping.py, line 2", "SyntaxError"],
        lab=write(CHECKS, "import os\ndef test_1(:\n"),
    ),
    _c(
        "checks-import-error",
        "check",
        "{lab}",
        says=["tests/test_ping.py, line 1", "No module named 'no_such_module'"],
        lab=write(CHECKS, "import no_such_module\n"),
    ),
    _c(
        "checks-none",
        "check",
        "{lab}",
        says="no checks found",
        lab=write(CHECKS, "VALUE = 1\n"),
    ),
    _c("checks-folder-missing", "check", "{lab}", says="has no checks", lab=remove_checks),
    # -- services that misbehave (these start the lab) ---------------------------------------
    _c(
        "service-exits-at-once",
        "check",
        "{lab}",
        says=["service 'front' exited with code 1", "front: cannot start"],
        todo="Hint:",
        lab=write(FRONT, "raise SystemExit('front: cannot start')\n"),
    ),
    _c(
        "service-never-listens",
        "check",
        "{lab}",
        says="service 'front' was not ready after 2 s",
        todo="Hint:",
        lab=both(
            write(FRONT, "import time\ntime.sleep(60)\n"),
            toml(FRONT_CMD, FRONT_CMD + 'ready = { http = "/health", timeout = 2 }\n'),
        ),
    ),
    _c(
        "service-prints-a-huge-line",
        "check",
        "{lab}",
        says=["service 'front' exited with code 3", "more characters)", "front: giving up"],
        todo="Hint:",
        lab=write(
            FRONT,
            "import sys\nprint('x' * 1_000_000)\nprint('front: giving up')\nsys.exit(3)\n",
        ),
    ),
    _c(
        "service-port-taken",
        "check",
        "{lab}",
        says=["port {port} is busy", "PORT="],
        todo="Hint:",
        lab=take_a_port,
    ),
]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _leftovers(before: set[int]) -> list[tuple[int, str]]:
    """Processes a chaoslab run started that outlived their run (waits a little for them)."""
    deadline = time.monotonic() + 3
    while True:
        left = [
            (pid, run)
            for pid, run in labelled_processes()
            if pid not in before and not is_live(run)
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(scope="module")
def toxiproxy() -> str:
    return str(find_toxiproxy())


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, tmp_path: Path, toxiproxy: str) -> None:
    labs = tmp_path / "labs"
    lab = labs / "ping"
    shutil.copytree(FIXTURE_LABS / "ping", lab, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    with contextlib.ExitStack() as stack:
        if case.lab is not None:
            case.lab(lab, stack)
        values = {"tmp": str(tmp_path), "labs": str(labs), "lab": str(lab)}
        if (lab / "port").exists():
            values["port"] = (lab / "port").read_text()
        if case.status is not None:
            status = cache / "chaoslab" / "status.json"
            status.parent.mkdir(parents=True)
            data = case.status if isinstance(case.status, bytes) else case.status.encode()
            status.write_bytes(data)
        env = {
            "CHAOSLAB_LABS": str(labs),
            "XDG_CACHE_HOME": str(cache),
            "CHAOSLAB_TOXIPROXY": toxiproxy,
            **{k: _fill(v, values) for k, v in case.env.items()},
        }
        before = {pid for pid, _ in labelled_processes()}
        child = subprocess.Popen(
            chaoslab_command(*(_fill(a, values) for a in case.args)),
            env=child_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            stdout, stderr = child.communicate(timeout=120)
        finally:
            child.kill()
        output = stdout + stderr

    assert child.returncode == case.code, output
    assert "Traceback (most recent call last)" not in output, output
    for text in case.says:
        assert _fill(text, values) in output, output
    assert case.todo in output, output
    assert len(output) < 10_000, f"{len(output)} characters of output"
    assert _leftovers(before) == [], "processes of the run are still alive"
    assert _registered_by(child.pid) == [], "the run is still registered"


def _registered_by(pid: int) -> list[str]:
    runs = []
    for entry in registry().glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(entry.read_text()).get("owner_pid") == pid:
                runs.append(entry.stem)
    return runs
