"""`chaoslab`: the learner's and the instructor's command line.

chaoslab list                 the catalogue, with your status
chaoslab check LAB            run the lab's checks on your code (--solution: on the reference)
chaoslab hint LAB             the next hint
chaoslab logs LAB             the services' logs of the last run
chaoslab doctor               what is installed, what is missing, and how to fix it
chaoslab setup                build or find toxiproxy-server
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import pytest

from harness._errors import ChaoslabError
from harness.backends import BACKENDS
from harness.environment import LabEnvironment, logs_dir
from harness.lab import Lab, catalogue, find_lab
from harness.report import CheckOutcome, Verdict, render
from harness.runs import pid_alive
from harness.tools import (
    TOXIPROXY_VERSION,
    binary_version,
    cache_root,
    find_toxiproxy,
    install_toxiproxy,
)
from harness.variants import ALSO_CORRECT_DIR, WRONG_DIR, load_variant, resolve_variant


# -- learner status ------------------------------------------------------------------------
def _status_file() -> Path:
    return cache_root() / "status.json"


def _load_status() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_status_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_status(slug: str, **fields: object) -> None:
    status = _load_status()
    status.setdefault(slug, {}).update(fields)
    _status_file().parent.mkdir(parents=True, exist_ok=True)
    _status_file().write_text(json.dumps(status, indent=2))


# -- check ---------------------------------------------------------------------------------
class _Collector:
    """A pytest plugin object that turns reports into a Verdict."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self._by_id: dict[str, CheckOutcome] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = self._by_id.get(report.nodeid)
        if outcome is None:
            outcome = CheckOutcome(report.nodeid.rsplit("::", 1)[-1], "passed")
            self._by_id[report.nodeid] = outcome
            self.verdict.checks.append(outcome)
        outcome.duration += report.duration
        if report.skipped and report.when != "teardown":
            outcome.outcome = "skipped"
        elif report.failed:
            outcome.outcome = "failed" if report.when == "call" else "error"
            outcome.message = _message(report)
            if report.when == "setup" and outcome.message.startswith("chaoslab:"):
                self.verdict.setup_error = outcome.message.removeprefix("chaoslab:").strip()

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.verdict.setup_error = f"the checks could not be loaded:\n{report.longreprtext}"


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        return longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return report.longreprtext


def run_checks(
    lab: Lab,
    *,
    solution: bool = False,
    seed: int | None = None,
    quiet: bool = True,
    backend: str = "process",
    variant: Path | None = None,
    extra: Sequence[str] = (),
) -> Verdict:
    """Run a lab's checks in this process; returns the verdict."""
    chosen = seed if seed is not None else int.from_bytes(os.urandom(3), "big")
    verdict = Verdict(lab.slug, solution, chosen, variant=_variant_label(lab, variant))
    args = [
        str(lab.checks_dir),
        "--seed",
        str(chosen),
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(lab.root),
        "-c",
        os.devnull,
        "--strict-markers",
        "--backend",
        backend,
    ]
    if quiet:
        args += ["-p", "no:terminal"]
    if solution:
        args.append("--solution")
    if variant is not None:
        args += ["--variant", str(variant)]
    args += list(extra)
    code = pytest.main(args, plugins=[_Collector(verdict)])
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and not verdict.setup_error:
        verdict.setup_error = f"no checks found in {lab.checks_dir}"
    return verdict


def _variant_label(lab: Lab, variant: Path | None) -> str:
    if variant is None:
        return ""
    try:
        return variant.relative_to(lab.root).as_posix()
    except ValueError:
        return str(variant)


def _cmd_check(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    variant = resolve_variant(lab, args.variant) if args.variant else None
    if variant is not None and variant.parent in (
        lab.root / WRONG_DIR,
        lab.root / ALSO_CORRECT_DIR,
    ):
        load_variant(lab, variant)  # a malformed docstring is told before the run, not after
    start = time.monotonic()
    if not args.json_only:
        which = "the reference solution" if args.solution else "your code"
        if variant is not None:
            which = _variant_label(lab, variant)
        print(
            f"Running {len(lab.services)} services of '{lab.slug}' behind Toxiproxy, "
            f"checking {which}...",
            flush=True,
        )
    verdict = run_checks(
        lab,
        solution=args.solution,
        seed=args.seed,
        backend=args.backend,
        variant=variant,
        extra=args.pytest_args,
    )
    if args.json:
        verdict.write_json(Path(args.json))
    if not args.solution and variant is None:
        _save_status(
            lab.slug,
            passed=verdict.passed,
            total=len(verdict.checks),
            ok=verdict.ok,
            when=time.strftime("%Y-%m-%d %H:%M"),
        )
    if not args.json_only:
        print(render(verdict, lab, color=sys.stdout.isatty()))
        print(f"({time.monotonic() - start:.1f} s)")
    if verdict.setup_error:
        return 2
    return 0 if verdict.ok else 1


# -- the other commands --------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    status = _load_status()
    rows = []
    for lab in catalogue():
        entry = status.get(lab.slug, {})
        if not entry.get("total"):
            state = "not started"
        elif entry.get("ok"):
            state = "done"
        else:
            state = f"{entry.get('passed')}/{entry.get('total')} checks pass"
        rows.append((str(lab.chapter), lab.slug, lab.title, state))
    header = ("ch", "lab", "title", "status")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_hint(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    shown = int(str(_load_status().get(lab.slug, {}).get("hints", 0)))
    if args.number is not None:
        index = args.number - 1
        if not 0 <= index < len(lab.hints):
            print(f"'{lab.slug}' has hints 1 to {len(lab.hints)}.", file=sys.stderr)
            return 2
    else:
        index = min(shown, len(lab.hints) - 1)
    print(f"Hint {index + 1} of {len(lab.hints)}: {lab.hints[index]}")
    _save_status(lab.slug, hints=max(shown, index + 1))
    if index + 1 < len(lab.hints):
        print(f"(run 'chaoslab hint {lab.slug}' again for the next one)")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    folder = logs_dir(lab.slug)
    if not folder.is_dir():
        print(f"No logs yet for '{lab.slug}': run 'chaoslab check {lab.slug}' first.")
        return 1
    for log in sorted(folder.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-args.lines :]
        print(f"==> {log} <==")
        print("\n".join(lines))
    return 0


def _up_file() -> Path:
    return cache_root() / "up.json"


def _cmd_up(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    if _up_file().exists():
        owner = json.loads(_up_file().read_text()).get("pid")
        if isinstance(owner, int) and pid_alive(owner):
            print(f"A lab is already up (pid {owner}); run 'chaoslab down' first.", file=sys.stderr)
            return 2
    env = LabEnvironment(
        lab, solution=args.solution, seed=args.seed or 0, backend_name=args.backend
    )
    with env:
        print(
            f"'{lab.slug}' is up on the {args.backend} backend "
            f"(started in {env.timings.total:.1f} s)."
        )
        print(f"  toxiproxy API  {env.toxiproxy.base_url}")
        for name in lab.services:
            print(f"  service        {name:14} {env.direct_url(name)}")
        for link in lab.links:
            print(f"  proxy          {link!s:30} {env.proxy_url(link)}")
        print(f"  logs           {env.run.dir / 'logs' if env.run else '-'}")
        print("Ctrl-C here, or 'chaoslab down' from another terminal, stops it.", flush=True)
        _up_file().parent.mkdir(parents=True, exist_ok=True)
        _up_file().write_text(json.dumps({"pid": os.getpid(), "lab": lab.slug}))
        try:
            signal.pause()
        except KeyboardInterrupt:
            print(f"Stopping '{lab.slug}'...", flush=True)
        finally:
            _up_file().unlink(missing_ok=True)
    print(f"'{lab.slug}' stopped; nothing it started is left running.")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    try:
        owner = json.loads(_up_file().read_text())
    except (OSError, ValueError):
        print("No lab is up.")
        return 0
    pid = owner.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        _up_file().unlink(missing_ok=True)
        print("No lab is up (a stale record was removed).")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"'{owner.get('lab')}' is down.")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    problems = 0
    print(f"python      {sys.version.split()[0]} ({sys.executable})")
    try:
        binary = find_toxiproxy()
        print(f"toxiproxy   {binary_version(binary)} ({binary})")
    except ChaoslabError as exc:
        problems += 1
        print(f"toxiproxy   MISSING: {exc}")
    try:
        labs = catalogue()
        print(f"labs        {len(labs)} ({', '.join(lab.slug for lab in labs)})")
    except ChaoslabError as exc:
        problems += 1
        print(f"labs        BROKEN: {exc}")
    print(f"docker      {_docker_status()}")
    print(f"cache       {cache_root()}")
    return 1 if problems else 0


def _docker_status() -> str:
    """Docker is optional: its absence is information, not a problem."""
    try:
        from harness.backends.docker import connect  # noqa: PLC0415 - optional

        client = connect(timeout=5)
    except ChaoslabError:
        return (
            "not running (optional: 'make docker-setup' starts one; --backend process needs none)"
        )
    try:
        return f"engine {client.version().get('Version', '?')} (--backend docker available)"
    finally:
        client.close()


def _cmd_setup(args: argparse.Namespace) -> int:
    binary = install_toxiproxy()
    print(f"toxiproxy-server {binary_version(binary) or TOXIPROXY_VERSION} ready: {binary}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaoslab", description="Hands-on labs on how distributed systems fail."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the catalogue, with your status").set_defaults(func=_cmd_list)

    check = sub.add_parser("check", help="run a lab's checks")
    check.add_argument("lab", help="the lab's name (see 'chaoslab list') or folder")
    check.add_argument("--solution", action="store_true", help="check the reference solution")
    check.add_argument("--seed", type=int, default=None, help="replay a run's seed")
    check.add_argument(
        "--variant",
        metavar="PATH",
        help="check this fix instead of your file (a lab's wrong/ or also-correct/ file, or "
        "any file of yours), in a temp copy; authors and instructors use it",
    )
    check.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="process",
        help="where the services run: local processes (default) or docker containers",
    )
    check.add_argument("--json", metavar="FILE", help="also write the verdict as JSON (CI)")
    check.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    check.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    check.set_defaults(func=_cmd_check)

    hint = sub.add_parser("hint", help="the next hint of a lab")
    hint.add_argument("lab")
    hint.add_argument("number", nargs="?", type=int, help="a hint by number")
    hint.set_defaults(func=_cmd_hint)

    logs = sub.add_parser("logs", help="the services' logs of a lab's last run")
    logs.add_argument("lab")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(func=_cmd_logs)

    up = sub.add_parser("up", help="start a lab and keep it running, to explore it by hand")
    up.add_argument("lab")
    up.add_argument("--solution", action="store_true", help="run the reference solution")
    up.add_argument("--seed", type=int, default=None)
    up.add_argument("--backend", choices=list(BACKENDS), default="process")
    up.set_defaults(func=_cmd_up)
    sub.add_parser("down", help="stop the lab started by 'up'").set_defaults(func=_cmd_down)

    sub.add_parser("doctor", help="check the installation").set_defaults(func=_cmd_doctor)
    sub.add_parser("setup", help="build or find toxiproxy-server").set_defaults(func=_cmd_setup)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP take the Ctrl-C path, so every fixture tears down what it started.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return int(args.func(args))
    except ChaoslabError as exc:
        print(f"chaoslab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nchaoslab: interrupted; everything the run started has been stopped.", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
