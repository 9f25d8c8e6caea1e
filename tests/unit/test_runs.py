"""harness.runs: the registry of runs and the reaper, in a private cache and temp folder.

The process scan and the kill are replaced by fakes: a unit test must never signal a real
process, and another run on this machine must never look like litter to it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import runs


def _dead_pid():
    """A pid no process has right now."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for pid in range(pid_max - 1, 1, -1):
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid")


@pytest.fixture
def sandbox(monkeypatch, tmp_path):
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    registry = tmp / f"chaoslab-registry-{os.getuid()}"
    box = SimpleNamespace(registry=registry, tmp=tmp, processes=[], killed=[])
    monkeypatch.setattr(runs, "run_processes", lambda: iter(box.processes))
    monkeypatch.setattr(runs, "_kill_group_and_process", box.killed.append)
    monkeypatch.setattr(runs, "_reapers", [])
    return box


def _owner(pid, start):
    me = runs.Owner.me()
    return runs.Owner(me.host, me.boot, me.pidns, pid, start)


def _process(pid, run_id, owner, uid=None):
    return runs.LabelledProcess(pid, run_id, owner, os.getuid() if uid is None else uid)


def _register(sandbox, run_id, owner_pid, owner_start):
    sandbox.registry.mkdir(parents=True, exist_ok=True)
    entry = sandbox.registry / f"{run_id}.json"
    entry.write_text(json.dumps({"owner": _owner(owner_pid, owner_start).label()}))
    folder = sandbox.tmp / f"chaoslab-run-{run_id}-x1y2"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "api.log").write_text("started\n")
    return entry, folder


def _register_live(sandbox, run_id):
    me = os.getpid()
    return _register(sandbox, run_id, me, runs.process_start_time(me))


# -- process_start_time ------------------------------------------------------------------------
def test_process_start_time_of_this_process_is_stable():
    first = runs.process_start_time(os.getpid())
    assert first is not None
    assert first.isdigit()
    assert runs.process_start_time(os.getpid()) == first


def test_process_start_time_of_a_dead_pid_is_none():
    assert runs.process_start_time(_dead_pid()) is None


# -- reap_stale --------------------------------------------------------------------------------
def test_reap_removes_the_entry_and_folder_of_a_run_whose_owner_died(sandbox):
    entry, folder = _register(sandbox, "deadbeef", _dead_pid(), "12345")

    reaped = runs.reap_stale()

    assert reaped == {"deadbeef"}
    assert not entry.exists()
    assert not folder.exists()


def test_reap_keeps_a_live_run(sandbox):
    entry, folder = _register_live(sandbox, "a1b2c3d4")

    reaped = runs.reap_stale()

    assert reaped == set()
    assert entry.exists()
    assert (folder / "logs" / "api.log").exists()
    assert sandbox.killed == []


def test_reap_takes_a_recycled_pid_for_a_dead_owner(sandbox):
    entry, folder = _register(sandbox, "0ld0ld00", os.getpid(), "1")  # same pid, other process

    assert runs.reap_stale() == {"0ld0ld00"}
    assert not entry.exists()
    assert not folder.exists()


def test_reap_treats_an_unreadable_entry_as_dead(sandbox):
    entry, folder = _register(sandbox, "c0ffee00", 1, "1")
    entry.write_text("{not json")

    assert runs.reap_stale() == {"c0ffee00"}
    assert not entry.exists()
    assert not folder.exists()


def test_reap_removes_run_folders_no_live_run_owns_and_nothing_else(sandbox):
    _, live_folder = _register_live(sandbox, "11111111")
    orphan = sandbox.tmp / "chaoslab-run-22222222-abcd"
    orphan.mkdir()
    unrelated = sandbox.tmp / "pytest-of-someone"
    unrelated.mkdir()

    runs.reap_stale()

    assert live_folder.exists()
    assert not orphan.exists()
    assert unrelated.exists()


def test_reap_kills_processes_whose_owner_is_provably_dead(sandbox):
    me = runs.Owner.me()
    sandbox.processes = [
        _process(4001, "11111111", me),  # a live run of this harness
        _process(4002, "99999999", _owner(_dead_pid(), "12345")),  # its owner died
        _process(4003, "88888888", _owner(os.getpid(), "1")),  # its owner's pid was reused
    ]

    reaped = runs.reap_stale()

    assert reaped == {"99999999", "88888888"}
    assert sandbox.killed == [4002, 4003]


@pytest.mark.parametrize(
    "why",
    [
        "not in this user's registry",
        "another user's",
        "another machine",
        "another pid namespace",
        "no owner label",
    ],
)
def test_reap_never_kills_what_it_cannot_prove_dead(sandbox, why):
    # A live run that uses another TMPDIR has no entry in this registry: it is still alive.
    me = runs.Owner.me()
    dead = _owner(_dead_pid(), "12345")
    process = {
        "not in this user's registry": _process(4001, "77777777", me),
        "another user's": _process(4001, "77777777", dead, uid=os.getuid() + 1),
        "another machine": _process(
            4001, "77777777", runs.Owner("elsewhere", me.boot, me.pidns, dead.pid, "1")
        ),
        "another pid namespace": _process(
            4001, "77777777", runs.Owner(me.host, me.boot, "4026530000", dead.pid, "1")
        ),
        "no owner label": _process(4001, "77777777", None),
    }[why]
    sandbox.processes = [process]

    assert runs.reap_stale() == set()
    assert sandbox.killed == []


def test_an_owner_of_an_earlier_boot_is_dead():
    me = runs.Owner.me()
    assert runs.Owner(me.host, "an-earlier-boot", me.pidns, me.pid, me.start).provably_dead()
    assert not me.provably_dead()


@pytest.mark.parametrize("label", ["", "nonsense", "a/b/c/notapid/1", None, 42])
def test_an_unreadable_owner_label_proves_nothing(label):
    assert runs.Owner.parse(label) is None


def test_an_owner_label_round_trips():
    me = runs.Owner.me()
    assert runs.Owner.parse(me.label()) == me
    assert runs.Owner.parse(runs.Owner("h/x", "b", "1", 7, None).label()) == runs.Owner(
        "h/x", "b", "1", 7, None
    )


def test_reap_calls_registered_reapers(sandbox):
    seen = []

    def reaper():
        seen.append(1)

    runs.register_reaper(reaper)
    runs.register_reaper(reaper)  # registering twice calls it once

    runs.reap_stale()

    assert seen == [1]


def test_a_run_registering_mid_reap_keeps_its_folder(sandbox, monkeypatch):
    # The process scan is where the reaper spends its time; a run registers meanwhile.
    def scan_while_a_run_registers():
        _register_live(sandbox, "33333333")
        return iter(())

    monkeypatch.setattr(runs, "run_processes", scan_while_a_run_registers)
    runs.reap_stale()
    assert list(sandbox.tmp.glob("chaoslab-run-33333333-*"))


def test_reap_removes_an_entry_without_a_start_time_whose_owner_died(sandbox):
    entry, _ = _register(sandbox, "deadbeef", _dead_pid(), None)

    assert runs.reap_stale() == {"deadbeef"}
    assert not entry.exists()


def test_reap_reads_an_older_harness_entry(sandbox):
    sandbox.registry.mkdir(parents=True, exist_ok=True)
    old = sandbox.registry / "0ldf0rm0.json"
    old.write_text(json.dumps({"owner_pid": _dead_pid(), "owner_start": "5"}))
    assert runs.reap_stale() == {"0ldf0rm0"}
    assert not old.exists()


# -- Run ---------------------------------------------------------------------------------------
def test_run_registers_itself_and_makes_its_folder_then_closes_clean(sandbox):
    run = runs.Run.create()

    entry = sandbox.registry / f"{run.id}.json"
    assert json.loads(entry.read_text()) == {
        "owner": runs.Owner.me().label(),
        "owner_pid": os.getpid(),
        "owner_start": runs.process_start_time(os.getpid()),
    }
    assert run.dir.parent == sandbox.tmp
    assert run.dir.name.startswith(f"chaoslab-run-{run.id}-")
    assert runs.reap_stale() == set()  # its own owner is alive
    assert run.dir.is_dir()

    run.close()
    run.close()  # twice is fine

    assert not entry.exists()
    assert not run.dir.exists()


def test_run_create_reaps_the_leftovers_of_a_dead_run(sandbox):
    entry, folder = _register(sandbox, "deadbeef", _dead_pid(), "12345")

    run = runs.Run.create()

    assert not entry.exists()
    assert not folder.exists()
    run.close()


def test_root_counts_what_it_runs_as_nobody_as_its_own_and_nothing_else(monkeypatch):
    monkeypatch.setattr(runs.os, "getuid", lambda: 0)
    nobody = runs.unprivileged_ids()
    assert nobody is not None
    assert runs.runs_as_mine(0)
    assert runs.runs_as_mine(nobody[0])
    assert not runs.runs_as_mine(1000)


def test_any_other_user_counts_only_its_own_processes(monkeypatch):
    monkeypatch.setattr(runs.os, "getuid", lambda: 1000)
    assert runs.unprivileged_ids() is None
    assert runs.runs_as_mine(1000)
    assert not runs.runs_as_mine(0)
    assert not runs.runs_as_mine(65534)
