"""The wiring to porcupine, proven on data nobody here wrote: the Jepsen etcd logs and the kv
logs that ship in porcupine's own Go module, turned into the harness's history format and
judged through `linearizable`, must get the verdicts porcupine's own tests expect of them."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from harness.history import History, Operation
from harness.linearizability import PORCUPINE_VERSION, linearizable
from harness.linearizability.program import SOURCE

pytestmark = pytest.mark.integration
MODULE = "github.com/anishathalye/porcupine"


@cache
def module_dir() -> Path:
    """porcupine's module as the Go toolchain has it (`make setup` downloaded it)."""
    out = subprocess.run(
        [
            "go",
            "mod",
            "download",
            "-json",
            f"github.com/anishathalye/porcupine@v{PORCUPINE_VERSION}",
        ],
        cwd=SOURCE,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return Path(json.loads(out.stdout)["Dir"])


@cache
def expected_verdicts() -> dict[str, bool]:
    """What porcupine's own tests expect of each file (read from its porcupine_test.go)."""
    source = (module_dir() / "porcupine_test.go").read_text()
    verdicts = {
        f"jepsen/etcd_{int(n):03d}.log": ok == "true"
        for n, ok in re.findall(r"checkJepsen\(t, (\d+), (true|false)\)", source)
    }
    verdicts |= {
        f"kv/{name}.txt": ok == "true"
        for name, ok in re.findall(r'checkKv\(t, "([\w-]+)", (true|false), true\)', source)
    }
    return verdicts


ETCD = re.compile(r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(\w+)\s+(.*)$")


def etcd_history(path: Path) -> History:
    """A Jepsen etcd log (a cas register) as a harness history; line numbers are the clock.

    As porcupine's parser reads it: a cas answered `:fail` did not swap (the register held
    another value); a read that timed out tells nothing; an operation never answered (`:info`
    timeouts, the end of the log) may have taken effect at any moment after its call."""
    clock = iter(range(1, 10**9))
    history = History(clock=lambda: float(next(clock)))
    pending: dict[int, Operation] = {}
    for line in path.read_text().splitlines():
        match = ETCD.match(line)
        if match is None:
            next(clock)
            continue
        proc, kind, f, arg = int(match[1]), match[2], match[3], match[4].strip()
        if kind == "invoke":
            assert proc not in pending, f"{path.name}: process {proc} invoked twice"
            if f == "cas":
                old, new = (int(v) for v in arg.strip("[]").split())
                pending[proc] = history.invoke(proc, "cas", (old, new))
            elif f == "write":
                pending[proc] = history.invoke(proc, "write", int(arg))
            else:
                pending[proc] = history.invoke(proc, "read")
        elif kind == "ok" and proc in pending:
            op = pending.pop(proc)
            result = (None if arg == "nil" else int(arg)) if f == "read" else True
            history.complete(op, "ok", result)
        elif kind == "fail" and proc in pending:
            op = pending.pop(proc)
            if f == "cas":
                history.complete(op, "ok", False)  # answered: it did not swap
            else:
                history.complete(op, "unknown")  # a read that timed out
        else:
            next(clock)  # `:info`: still pending, as in porcupine's parser
    for op in pending.values():
        history.complete(op, "unknown")
    return history


KV = re.compile(
    r'\{:process (\d+), :type :(invoke|ok), :f :(\w+), :key "(.*?)", :value (nil|"(.*)")\}'
)


def kv_history(path: Path) -> History:
    """A porcupine kv log as a harness history (get/put/append, per key)."""
    clock = iter(range(1, 10**9))
    history = History(clock=lambda: float(next(clock)))
    pending: dict[int, Operation] = {}
    for line in path.read_text().splitlines():
        match = KV.match(line)
        if match is None:
            next(clock)
            continue
        proc, kind, f, key, value = int(match[1]), match[2], match[3], match[4], match[6]
        if kind == "invoke":
            assert proc not in pending, f"{path.name}: process {proc} invoked twice"
            pending[proc] = history.invoke(proc, f, key if f == "get" else (key, value))
        else:
            op = pending.pop(proc)
            history.complete(op, "ok", value if f == "get" else None)
    for op in pending.values():  # porcupine's parser answers them at the end, a get with ""
        history.complete(op, "ok", "" if op.f == "get" else None)
    return history


def judge(name: str) -> bool:
    path = module_dir() / "test_data" / name
    if name.startswith("jepsen/"):
        result = linearizable(etcd_history(path), model="cas-register", timeout=60)
    else:
        result = linearizable(kv_history(path), model="kv", timeout=60)
    assert not result.observed.startswith("unknown"), f"{name}: {result.explain()}"
    return result.valid


def test_porcupines_tests_name_the_files_they_judge() -> None:
    verdicts = expected_verdicts()
    assert sum(n.startswith("jepsen/") for n in verdicts) >= 100
    assert sum(n.startswith("kv/") for n in verdicts) == 6
    assert any(verdicts.values())
    assert not all(verdicts.values())


def test_every_file_gets_porcupines_verdict() -> None:
    verdicts = expected_verdicts()
    disagree = [name for name in sorted(verdicts) if judge(name) != verdicts[name]]
    assert disagree == [], f"the Python API disagrees with porcupine's tests on {disagree}"
