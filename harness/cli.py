"""`chaoslab`: the learner's and the instructor's command line.

chaoslab list                 the catalogue, with your status
chaoslab check LAB            run the lab's checks on your code (--solution: on the reference)
chaoslab hint LAB             the next hint
chaoslab logs LAB             the services' logs of the last run
chaoslab up LAB / down        keep a lab running to explore it by hand; stop it
chaoslab doctor               what is installed, what is missing, and how to fix it
chaoslab setup                build or find toxiproxy-server, porcupine, Prometheus and Jaeger

Exit codes: 0 every check passed, 1 a check failed, 2 the lab or the command could not run,
128 + N when signal N stopped it (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import NoReturn


def _exit_quietly(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


# Ctrl-C or SIGTERM while the imports below load has nothing to stop yet: exit without a
# traceback. The handlers that were there come back once the imports are done.
_EARLY = {sig: signal.signal(sig, _exit_quietly) for sig in (signal.SIGINT, signal.SIGTERM)}

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import pytest

from harness import progress
from harness._errors import ChaoslabError, SetupError, UsageError
from harness.backends import BACKENDS
from harness.compose import write_compose
from harness.environment import LabEnvironment, logs_dir
from harness.explore import by_hand
from harness.files import write_atomically
from harness.grading.classwide import SUBMISSIONS, export_grader, gather
from harness.grading.command import check_repeatedly, grade
from harness.grading.export import WORKFLOW, export_student
from harness.html_report import VERDICT, write_report
from harness.lab import PROJECT_ROOT, Lab, catalogue, find_lab, scan
from harness.logs_view import merged
from harness.readiness import clip
from harness.recording import RECORD
from harness.report import CheckOutcome, ProgressLine, Verdict, render
from harness.reset import reset
from harness.runs import pid_alive, process_start_time, reap_stale
from harness.tools import (
    TOXIPROXY_VERSION,
    binary_version,
    cache_root,
    find_toxiproxy,
    install_toxiproxy,
    install_toxiproxy_cli,
)
from harness.variants import ALSO_CORRECT_DIR, WRONG_DIR, load_variant, resolve_variant
from harness.watch import watch_lab


def _restore_early_handlers() -> None:
    for sig, handler in _EARLY.items():
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)


if __name__ != "__main__":  # imported: the importer gets its handlers back; as -m, main() does
    _restore_early_handlers()


def _require_cache() -> None:
    """A run keeps its logs and the learner's progress in the cache: check it before a run."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".probe-"):
            pass
    except OSError as exc:
        raise SetupError(
            f"cannot write to the cache folder {root} ({exc.strerror or exc}); chaoslab keeps "
            "each run's logs and your progress there.\n  Fix: set XDG_CACHE_HOME to a writable "
            "folder (chaoslab uses $XDG_CACHE_HOME/chaoslab), or make that one writable."
        ) from None


def _writable(value: str) -> Path:
    """The `--json` file, checked before the run so that a verdict is never lost after it."""
    path = Path(value)
    if path.is_dir():
        raise UsageError(
            f"--json {value}: that is a folder.\n  Fix: give a file name, e.g. "
            f"--json {path / 'verdict.json'}"
        )
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(
            f"--json {value}: the folder {folder} does not exist.\n  Fix: create it first "
            f"(mkdir -p {folder}) or write the verdict somewhere else."
        )
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(
            f"--json {value}: cannot write there ({exc.strerror or exc}).\n  Fix: choose a file "
            "in a folder you can write to."
        ) from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def _write_verdict(verdict: Verdict, path: Path) -> bool:
    """Write the JSON verdict; if that fails after all, print it rather than lose it."""
    try:
        verdict.write_json(path)
    except OSError as exc:
        print(
            f"chaoslab: cannot write the verdict to {path} ({exc.strerror or exc}); here it "
            f"is:\n{json.dumps(verdict.to_json(), indent=2)}\n  Fix: write it to a folder you "
            "can write to (--json FILE).",
            file=sys.stderr,
        )
        return False
    return True


# -- check ---------------------------------------------------------------------------------
class _Collector:
    """A pytest plugin object that turns reports into a Verdict."""

    def __init__(self, verdict: Verdict, lab: Lab, progress: ProgressLine | None = None) -> None:
        self.verdict = verdict
        self.lab = lab
        self.progress = progress
        self.interrupted = False  # by Ctrl-C or a signal, not by pytest's own "Interrupted"
        self._by_id: dict[str, CheckOutcome] = {}

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int, str]) -> None:
        if self.progress is not None:
            self.progress.check(nodeid.rsplit("::", 1)[-1])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = self._by_id.get(report.nodeid)
        if outcome is None:
            outcome = CheckOutcome(report.nodeid.rsplit("::", 1)[-1], "passed")
            self._by_id[report.nodeid] = outcome
            self.verdict.checks.append(outcome)
        if report.when == "call":
            # A check's own time: a scenario its module shares runs in the first check's setup,
            # and is the run's time (printed at the end), not that check's.
            outcome.duration = report.duration
        for name, value in report.user_properties:
            if name == "chaoslab_passed" and report.passed:
                outcome.message = str(value)
        if report.skipped and report.when != "teardown":
            outcome.outcome = "skipped"
        elif report.failed:
            outcome.outcome = "failed" if report.when == "call" else "error"
            outcome.message = _message(report)
            if report.when == "setup" and outcome.message.startswith("chaoslab:"):
                self.verdict.setup_error = outcome.message.removeprefix("chaoslab:").strip()

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.verdict.setup_error:
            self.verdict.setup_error = _load_error(report, self.lab)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest stops on collection errors with its own KeyboardInterrupt subclass; only a
        # real one (Ctrl-C, or SIGTERM through _terminate) is the person stopping the run.
        if excinfo.type is KeyboardInterrupt:
            self.interrupted = True


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        return longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return report.longreprtext


_FILE_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_FRAME = re.compile(r"^(?P<file>\S[^:]*\.py):(?P<line>\d+): in ")


def _load_error(report: pytest.CollectReport, lab: Lab) -> str:
    """A check file that does not import, told as its file, its line and the error: the
    frames inside pytest are noise to the person who has to fix the file."""
    text = report.longreprtext
    lines = text.splitlines()
    error = [
        line[4:] if line.startswith("E   ") else line[2:] for line in lines if line[:2] == "E "
    ]
    where: tuple[str, str] | None = None
    for line in error:
        match = _FILE_LINE.search(line)
        if match:
            where = (match["file"], match["line"])
    if where is None:
        for line in lines:
            match = _FRAME.match(line)
            if match and _inside(Path(match["file"]), lab.root):
                where = (match["file"], match["line"])
    if where is None:
        where = (str(lab.root / report.nodeid.split("::", 1)[0]), "")
    file, line_no = where
    shown = _relative(Path(file), lab.root)
    at = f"{shown}, line {line_no}" if line_no else shown
    body = error or lines[-20:]
    detail = "\n".join(f"    {clip(line)}" for line in body if line.strip())
    return (
        f"the checks could not be loaded: {at}\n{detail}\n"
        f"  Fix: correct {shown}{f' at line {line_no}' if line_no else ''}; the lab's checks "
        "must import without errors (a lab author's file: if you did not change it, restore it)."
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return str(path)


class _StderrRecorder(io.StringIO):
    """Holds what pytest prints to stderr, so that its usage errors become the verdict's."""

    def __init__(self, real: TextIO) -> None:
        super().__init__()
        self._real = real

    def fileno(self) -> int:
        return self._real.fileno()


def _pytest_error(said: str, extra: Sequence[str]) -> str:
    """What pytest printed when it refused to run, as one message with a fix."""
    lines = [line.removeprefix("ERROR: ").strip() for line in said.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    internal = [line for line in lines if line.startswith("INTERNALERROR>")]
    if internal:
        last = internal[-1].removeprefix("INTERNALERROR>").strip()
        return (
            f"pytest stopped with an internal error: {clip(last)}\n  Fix: run the lab's checks "
            "with 'python -m pytest <lab>/tests' to see the whole error."
        )
    detail = "\n".join(f"    {clip(line)}" for line in (errors or lines)[-5:]) or "    (no reason)"
    if extra:
        return (
            f"pytest refused the arguments after '--' ({' '.join(extra)}):\n{detail}\n"
            "  Fix: correct or drop them ('python -m pytest --help' lists what pytest takes)."
        )
    return f"pytest could not run the checks:\n{detail}\n  Fix: see the error above."


def run_checks(
    lab: Lab,
    *,
    solution: bool = False,
    seed: int | None = None,
    quiet: bool = True,
    backend: str = "process",
    variant: Path | None = None,
    extra: Sequence[str] = (),
    progress: ProgressLine | None = None,
) -> Verdict:
    """Run a lab's checks in this process; returns the verdict.

    A lab that could not run (its checks missing or not importable, pytest refusing an
    argument) gives a verdict with `setup_error`; Ctrl-C raises KeyboardInterrupt."""
    chosen = seed if seed is not None else int.from_bytes(os.urandom(3), "big")
    verdict = Verdict(lab.slug, solution, chosen, variant=_variant_label(lab, variant))
    if not lab.checks_dir.is_dir():
        verdict.setup_error = (
            f"the lab has no checks: {lab.checks_dir} is not a folder.\n  Fix: restore the "
            f"lab's tests/ folder (its test_*.py files), e.g. 'git checkout -- {lab.checks_dir}'."
        )
        return verdict
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
    collector = _Collector(verdict, lab, progress)
    real_stderr = sys.stderr
    recorder = _StderrRecorder(real_stderr)
    sys.stderr = recorder
    try:
        code = pytest.main(args, plugins=[collector])
    finally:
        sys.stderr = real_stderr
    said = recorder.getvalue()
    if collector.interrupted:
        real_stderr.write(said)
        raise KeyboardInterrupt
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) or (
        code == pytest.ExitCode.INTERRUPTED and not verdict.setup_error
    ):
        verdict.setup_error = verdict.setup_error or _pytest_error(said, extra)
        said = ""
    elif code == pytest.ExitCode.NO_TESTS_COLLECTED and not verdict.setup_error:
        verdict.setup_error = (
            f"the pytest arguments after '--' ({' '.join(extra)}) selected no check.\n  Fix: "
            "correct them (a check is a function test_* in a file test_*.py)."
            if extra
            else f"no checks found in {lab.checks_dir}.\n  Fix: a check is a function named "
            "test_* in a file named test_*.py; restore the lab's checks."
        )
    real_stderr.write(said)
    return verdict


def _colour() -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _lab_name(given: str, lab: Lab) -> str:
    """The name to suggest in commands: the slug when it finds this very lab, else the folder
    the learner gave (a copy outside the catalogue has no name of its own)."""
    try:
        if find_lab(lab.slug).root == lab.root:
            return lab.slug
    except ChaoslabError:
        pass
    return given


def _variant_label(lab: Lab, variant: Path | None) -> str:
    if variant is None:
        return ""
    try:
        return variant.relative_to(lab.root).as_posix()
    except ValueError:
        return str(variant)


def _cmd_check(args: argparse.Namespace) -> int:
    if args.repeat > 1:
        if args.json or args.variant or args.json_only or args.pytest_args:
            raise UsageError(
                "--repeat cannot be combined with --json, --variant or pytest arguments.\n"
                "  Fix: drop them, or use 'chaoslab grade LAB --repeat N --out DIR' for files."
            )
        _require_cache()
        return check_repeatedly(args.lab, args.repeat, args.seed, args.backend, args.solution)
    json_path = _writable(args.json) if args.json else None
    try:
        _require_cache()
        lab = find_lab(args.lab)
        variant = resolve_variant(lab, args.variant) if args.variant else None
        if variant is not None and variant.parent in (
            lab.root / WRONG_DIR,
            lab.root / ALSO_CORRECT_DIR,
        ):
            load_variant(lab, variant)  # a malformed docstring is told before the run, not after
    except ChaoslabError as exc:
        if json_path is not None:  # CI reads a verdict whatever happened
            name = Path(args.lab).name or str(args.lab)
            _write_verdict(
                Verdict(name, args.solution, args.seed or 0, setup_error=str(exc)), json_path
            )
        raise
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
    live = sys.stdout.isatty() and not args.json_only
    with ProgressLine(sys.stdout) if live else contextlib.nullcontext() as line:
        verdict = run_checks(
            lab,
            solution=args.solution,
            seed=args.seed,
            backend=args.backend,
            variant=variant,
            extra=args.pytest_args,
            progress=line,
        )
    written = _write_verdict(verdict, json_path) if json_path is not None else True
    if not args.json_only:  # the last run's verdict, beside its logs, for `chaoslab report`
        with contextlib.suppress(OSError):
            verdict.write_json(logs_dir(lab.slug) / VERDICT)
    # --json-only is a machine's run (a lab's proof, a grade): not the learner's progress.
    if not args.solution and variant is None and not verdict.setup_error and not args.json_only:
        progress.record_check(lab, verdict.passed, len(verdict.checks), verdict.ok)
    if not args.json_only:
        print(render(verdict, lab, color=_colour(), name=_lab_name(args.lab, lab)))
        print(f"({time.monotonic() - start:.1f} s)")
        if args.report:
            print(f"Report: {write_report(lab, logs_dir(lab.slug))}")
    if verdict.setup_error or not written:
        return 2
    return 0 if verdict.ok else 1


# -- the other commands --------------------------------------------------------------------
def _cmd_export(args: argparse.Namespace) -> int:
    if args.grader is not None:
        if args.labs:
            raise UsageError(
                "--grader grades every lab; it takes no lab names.\n  Fix: drop the names."
            )
        written = export_grader(Path(args.grader))
        print("Wrote " + ", ".join(str(p) for p in written) + ".")
        print(
            f"List the students' repositories in {Path(args.grader) / SUBMISSIONS}, add a "
            "CLASSROOM_TOKEN secret that can read them, push, and run 'Grade the class' from "
            "the Actions tab: class-grades.csv is its artifact."
        )
        return 0
    labs = [find_lab(name) for name in args.labs] if args.labs else catalogue()
    into = Path(args.student)
    files = export_student(labs, into)
    size = sum(f.stat().st_size for f in files)
    print(
        f"Wrote a student repository to {into}: {len(labs)} lab(s), {len(files)} files, "
        f"{size / 1024:.0f} KiB, without solutions or the labs' wrong and also-correct fixes.\n"
        f"GitHub Classroom grades each push with {into / WORKFLOW} (a step per lab)."
    )
    return 0


def _cmd_gather(args: argparse.Namespace) -> int:
    rows = gather(Path(args.results), _writable_csv(args.csv))
    print(f"Wrote {rows} row(s) to {args.csv}.")
    return 0


def _writable_csv(value: str) -> Path:
    path = Path(value)
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(
            f"--csv {value}: not a file in an existing folder.\n  Fix: give a file name in a "
            "folder that exists."
        )
    return path


def _cmd_grade(args: argparse.Namespace) -> int:
    _require_cache()
    return grade(args.labs, args.out, args.submission, args.repeat, args.seed, args.backend)


def _cmd_list(args: argparse.Namespace) -> int:
    labs, broken = scan()
    status = progress.load()
    rows = []
    for lab in labs:
        state, extra = progress.describe(lab, status.get(progress.key(lab), {}))
        rows.append((str(lab.chapter), lab.slug, lab.title, state, extra))
    rows += [("?", bad.slug, "(its lab.toml does not load)", "BROKEN", "") for bad in broken]
    header = ("ch", "lab", "title", "status", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if broken:
        print(f"\nchaoslab: {len(broken)} lab(s) could not be loaded:", file=sys.stderr)
        for bad in broken:
            print(f"{bad.error}", file=sys.stderr)
        return 2
    return 0


def _cmd_compose(args: argparse.Namespace) -> int:
    labs = catalogue(PROJECT_ROOT / "labs")
    written = write_compose(labs, PROJECT_ROOT)
    print(f"Wrote {written[0]} ({len(labs)} profiles) and {len(written) - 1} Toxiproxy configs.")
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    backup, changed = reset(lab)
    if not changed:
        print(f"Your files of '{lab.slug}' are already the starter's; nothing changed.")
        return 0
    print(f"Put back the starter of {', '.join(changed)}.")
    print(f"Your version is kept in {backup} (copy it back to continue from it).")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    print(f"Report of the last run of '{lab.slug}': {write_report(lab, logs_dir(lab.slug))}")
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    _require_cache()
    return watch_lab(find_lab(args.lab), ["--backend", args.backend])


def _cmd_next(args: argparse.Namespace) -> int:
    labs = catalogue()
    lab = progress.next_lab(labs, progress.load())
    if lab is None:
        print(f"Every lab passes ({len(labs)} of {len(labs)}). Well done.")
        return 0
    state, _ = progress.describe(lab, progress.entry(lab))
    print(f"Next: {lab.slug} (chapter {lab.chapter}): {lab.title} [{state}]")
    print(f"  Read {lab.root / 'README.md'}, then run 'chaoslab check {lab.slug}'.")
    return 0


def _cmd_hint(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    shown = progress.hints_used(lab)
    if args.number is not None:
        index = args.number - 1
        if not 0 <= index < len(lab.hints):
            raise UsageError(
                f"'{lab.slug}' has hints 1 to {len(lab.hints)}; there is no hint {args.number}."
                f"\n  Fix: ask for one of them ('chaoslab hint {lab.slug} 1'), or leave the "
                "number out for the next one."
            )
    else:
        index = min(shown, len(lab.hints) - 1)
    print(f"Hint {index + 1} of {len(lab.hints)}: {lab.hints[index]}")
    progress.save(lab, hints=max(shown, index + 1))
    if index + 1 < len(lab.hints):
        print(f"(run 'chaoslab hint {lab.slug}' again for the next one)")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    folder = logs_dir(lab.slug)
    if not folder.is_dir():
        print(f"No logs yet for '{lab.slug}': run 'chaoslab check {lab.slug}' first.")
        return 2
    record = _last_json(folder / RECORD)
    print(_logs_heading(lab, _last_json(folder / VERDICT), record))
    lines = merged(folder, record)
    shown = lines[-args.lines :]
    print(f"\nThe last {len(shown)} of {len(lines)} lines, every process and fault in time order:")
    print("\n".join(shown) if shown else "(no log lines)")
    print(f"\nEach process's whole log: {folder}/<name>.log ('-n 1000' shows more here).")
    return 0


def _last_json(path: Path) -> dict[str, Any] | None:
    """A file the last run left (its verdict, its record), or None if it is missing or torn."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _logs_heading(lab: Lab, verdict: dict[str, Any] | None, record: dict[str, Any] | None) -> str:
    """When the run was, its seed and its verdict, and the faults it injected, in order: the
    logs alone do not say which run they are from."""
    if verdict is None or record is None:
        return f"Logs of the last run of '{lab.slug}' (its time and seed were not kept)."
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record["began_wall"])))
    which = verdict.get("variant") or (
        "reference solution" if verdict.get("solution") else "your code"
    )
    checks = verdict.get("checks", [])
    passed = sum(1 for c in checks if c.get("outcome") == "passed")
    lines = [
        f"Logs of the last run of '{lab.slug}' ({which}): {when}, seed {verdict.get('seed')}, "
        f"{passed} of {len(checks)} checks passed.",
        "Faults, in seconds since the checks began:",
    ]
    for fault in record.get("faults", []):
        end = "still on at the end" if fault["end"] is None else f"until {fault['end']:.2f} s"
        lines.append(f"  {fault['start']:7.2f} s  {fault['description']} ({end})")
    if not record.get("faults"):
        lines.append("  (none)")
    return "\n".join(lines)


# -- up and down -----------------------------------------------------------------------------
def _up_file() -> Path:
    return cache_root() / "up.json"


def _read_up() -> dict[str, object] | None:
    """The record `up` leaves for `down`, or None (no record, or one that is unreadable)."""
    try:
        record = json.loads(_up_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _owner(record: dict[str, object]) -> tuple[int | None, str]:
    """The pid of the `up` that wrote `record` if it still runs, else why not: a pid alone
    may now be another program's, so its start time must match too."""
    pid, started = record.get("pid"), record.get("start")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None, "it names no process"
    if not pid_alive(pid):
        return None, f"its process {pid} has exited"
    if started is None and process_start_time(os.getpid()) is None:
        return pid, ""  # no /proc to tell a recycled pid: a live pid is the best evidence
    now = process_start_time(pid)
    if started is None or now != started:
        return None, f"pid {pid} is now another program (its start time differs)"
    return pid, ""


def _cmd_up(args: argparse.Namespace) -> int:
    lab = find_lab(args.lab)
    _require_cache()
    record = _read_up()
    if record is not None:
        owner, _ = _owner(record)
        if owner is not None:
            raise UsageError(
                f"'{record.get('lab')}' is already up (pid {owner}).\n  Fix: run "
                "'chaoslab down' first, or press Ctrl-C in its terminal."
            )
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
        if env.prometheus_url is not None:
            print(f"  prometheus     {env.prometheus_url}  (HTTP API: /api/v1/query?query=...)")
            if env.prometheus_program is not None:
                print(f"  promtool       {env.prometheus_program.promtool}")
            for rel, problem in env.rule_problems.items():
                print(f"  rules          {rel} left out, promtool refuses it: {problem}")
        if env.jaeger_url is not None:
            print(
                f"  jaeger         {env.jaeger_url}  (query API: /api/traces?service=..., "
                "/api/traces/<trace id>; no UI in a build from source)"
            )
        if env.postgres_url is not None:
            print(f"  postgres       {env.postgres_url}  (psql '{env.postgres_url}')")
        print(f"  logs           {env.run.dir / 'logs' if env.run else '-'}")
        print(by_hand(env.toxiproxy.base_url, lab.links[0].name if lab.links else "PROXY"))
        print("Ctrl-C here, or 'chaoslab down' from another terminal, stops it.", flush=True)
        me = os.getpid()
        _write_up({"pid": me, "start": process_start_time(me), "lab": lab.slug})
        try:
            signal.pause()
        except KeyboardInterrupt:
            print(f"Stopping '{lab.slug}'...", flush=True)
        finally:
            _up_file().unlink(missing_ok=True)
    print(f"'{lab.slug}' stopped; nothing it started is left running.")
    return 0


def _write_up(record: dict[str, object]) -> None:
    path = _up_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(record))  # `down` never reads half a record


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _cmd_down(args: argparse.Namespace) -> int:
    path = _up_file()
    if not path.exists():
        print("No lab is up.")
        return 0
    record = _read_up()
    if record is None:
        path.unlink(missing_ok=True)
        print(f"No lab is up (removed {path}, which could not be read).")
        return 0
    lab = record.get("lab", "the lab")
    pid, why = _owner(record)
    if pid is None:
        path.unlink(missing_ok=True)
        print(
            f"No lab is up: the record of '{lab}' was stale ({why}); removed it, signalled nothing."
        )
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended between the look and the signal: nothing more to stop
    except PermissionError:
        raise UsageError(
            f"'{lab}' runs as pid {pid}, which you may not signal.\n  Fix: stop it as the "
            "user who started it (Ctrl-C in its terminal)."
        ) from None
    if _wait_gone(pid, args.grace):
        print(f"'{lab}' is down.")
        return 0
    print(
        f"'{lab}' (pid {pid}) did not stop within {args.grace:g} s of SIGTERM; sending SIGKILL.",
        flush=True,
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, 10):
        print(
            f"chaoslab: '{lab}' (pid {pid}) is still running after SIGKILL.\n  Fix: look at it "
            f"with 'ps -o pid,stat,cmd -p {pid}' (a process stuck in the kernel cannot be killed).",
            file=sys.stderr,
        )
        return 2
    path.unlink(missing_ok=True)  # its owner could not remove it
    reaped = reap_stale()  # the services die with it (PDEATHSIG); this takes the rest
    print(f"'{lab}' is down (killed; {len(reaped)} dead run(s) cleaned up).")
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
    from harness.linearizability import PORCUPINE_VERSION, find_porcupine  # noqa: PLC0415

    try:
        print(f"porcupine   v{PORCUPINE_VERSION} ({find_porcupine()})")
    except ChaoslabError as exc:
        problems += 1
        print(f"porcupine   MISSING: {exc}")
    try:
        labs, broken = scan()
        print(f"labs        {len(labs)} ({', '.join(lab.slug for lab in labs)})")
        for bad in broken:
            problems += 1
            print(f"labs        BROKEN: {bad.error}")
    except ChaoslabError as exc:
        problems += 1
        print(f"labs        BROKEN: {exc}")
    from harness.metrics import find_prometheus  # noqa: PLC0415

    try:
        prometheus = find_prometheus()
        print(
            f"prometheus  {prometheus.version} ({prometheus.server})"
            if prometheus is not None
            else "prometheus  not here yet (the labs that need it fetch it; "
            "'chaoslab setup --prometheus' gets it now)"
        )
    except ChaoslabError as exc:
        problems += 1
        print(f"prometheus  BROKEN: {exc}")
    from harness.tracing import find_jaeger  # noqa: PLC0415

    try:
        jaeger = find_jaeger()
        print(
            f"jaeger      {jaeger.binary}"
            if jaeger is not None
            else "jaeger      not here yet ('chaoslab setup' builds it, as does the first lab "
            "that needs it)"
        )
    except ChaoslabError as exc:
        problems += 1
        print(f"jaeger      BROKEN: {exc}")
    from harness.postgres import find_postgres  # noqa: PLC0415

    try:
        postgres = find_postgres()
        print(
            f"postgres    {postgres.version} ({postgres.server})"
            if postgres is not None
            else "postgres    not here yet ('chaoslab setup' installs Debian's package as root; "
            "the labs with a database need it)"
        )
    except ChaoslabError as exc:
        problems += 1
        print(f"postgres    BROKEN: {exc}")
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
    from harness.linearizability import PORCUPINE_VERSION, install_porcupine  # noqa: PLC0415

    binary = install_toxiproxy()
    print(f"toxiproxy-server {binary_version(binary) or TOXIPROXY_VERSION} ready: {binary}")
    checker = install_porcupine()
    print(f"chaoslab-porcupine (porcupine v{PORCUPINE_VERSION}) ready: {checker}")
    cli = install_toxiproxy_cli()
    if cli is not None:
        print(f"toxiproxy-cli (to break a running lab by hand) ready: {cli}")
    _setup_prometheus(build=args.prometheus)
    _setup_jaeger()
    _setup_postgres()
    return 0


def _setup_postgres() -> None:
    """PostgreSQL, for the labs with a database: found, or Debian's package (as root), and the
    template data folder every run copies, made now rather than on a training day."""
    from harness.postgres import install_postgres  # noqa: PLC0415
    from harness.postgres.program import ensure_template  # noqa: PLC0415

    labs, _ = scan()
    if not any(lab.postgres is not None for lab in labs):
        print("postgres: no lab here has a database; not looked for")
        return
    found = install_postgres()
    ensure_template(found)
    print(f"postgres {found.version} ready: {found.server}")


def _setup_jaeger() -> None:
    """Jaeger, the trace backend: found, or built from its Go module (2.5-4 minutes on 2
    cores, once per machine), so that no lab stops for it on a training day; not at all
    where no lab of the catalogue has traces (a student repository exported without them,
    whose every grading job runs setup)."""
    from harness.tracing import install_jaeger  # noqa: PLC0415

    labs, _ = scan()
    if not any(lab.tracing is not None for lab in labs):
        print("jaeger: no lab here sends traces; not built")
        return
    print(f"jaeger ready: {install_jaeger().binary}")


def _setup_prometheus(*, build: bool) -> None:
    """Prometheus when it comes fast (found, or Debian's package); its Go build, 8-12
    minutes, only with --prometheus (else the first lab that needs it builds it)."""
    from harness.metrics import install_prometheus  # noqa: PLC0415

    try:
        found = install_prometheus(build=build)
    except SetupError:
        if build:
            raise
        print(
            "prometheus: not on this machine, and no package to unpack; the first lab that "
            "needs it builds it from its Go module, or 'chaoslab setup --prometheus' does it "
            "now (8-12 minutes on 2 cores)."
        )
        return
    print(f"prometheus {found.version} (and promtool) ready: {found.server}")


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors also say what to do."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(
            2,
            f"chaoslab: error: {message}\n  Fix: see '{self.prog} --help' for what it takes.\n",
        )


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"'{text}' is not above zero")
        return value

    parse.__name__ = kind.__name__
    return parse


def _add_grading_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """grade, export and gather: the instructor's commands."""
    grading = sub.add_parser(
        "grade",
        help="grade labs: JUnit XML, JSON scores and Exercism results.json in a folder",
    )
    grading.add_argument("labs", nargs="*", metavar="LAB", help="the labs (default: all)")
    grading.add_argument("--out", required=True, metavar="DIR", help="where results go")
    grading.add_argument(
        "--submission",
        metavar="DIR",
        help="a student's repository (default: this folder); its checks, lab.toml and "
        "harness-owned services are never used, only its learner files",
    )
    grading.add_argument(
        "--repeat",
        type=_positive(int),
        default=1,
        metavar="N",
        help="runs per lab; a check earns its points only if it passed every run",
    )
    grading.add_argument("--seed", type=int, default=None, help="the first run's seed")
    grading.add_argument("--backend", choices=list(BACKENDS), default="process")
    grading.set_defaults(func=_cmd_grade)

    export = sub.add_parser(
        "export", help="write a repository for students, with a GitHub Classroom workflow"
    )
    export.add_argument("labs", nargs="*", metavar="LAB", help="the labs (default: all)")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--student", metavar="DIR", help="a new folder for the repository")
    target.add_argument(
        "--grader",
        metavar="DIR",
        help="your checkout: add a workflow that re-grades every student repository",
    )
    export.set_defaults(func=_cmd_export)

    gathering = sub.add_parser("gather", help="one CSV from many 'grade' result folders")
    gathering.add_argument("results", help="a folder holding grade results (scores.json)")
    gathering.add_argument("--csv", required=True, metavar="FILE", help="the CSV to write")
    gathering.set_defaults(func=_cmd_gather)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chaoslab", description="Hands-on labs on how distributed systems fail.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the catalogue, with your status").set_defaults(func=_cmd_list)
    sub.add_parser("next", help="the next lab to do, in course order").set_defaults(func=_cmd_next)

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
    check.add_argument(
        "--repeat",
        type=_positive(int),
        default=1,
        metavar="N",
        help="run N times with fresh seeds and show each check's pass rate",
    )
    check.add_argument("--report", action="store_true", help="also write an HTML report of the run")
    check.add_argument("--json", metavar="FILE", help="also write the verdict as JSON (CI)")
    check.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    check.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    check.set_defaults(func=_cmd_check)

    _add_grading_commands(sub)

    composing = sub.add_parser(
        "compose", help="write docker-compose.yml: a Compose profile per lab (for Compose users)"
    )
    composing.set_defaults(func=_cmd_compose)

    resetting = sub.add_parser(
        "reset", help="put a lab's starter files back (yours are kept in a backup)"
    )
    resetting.add_argument("lab", help="the lab's name or folder")
    resetting.set_defaults(func=_cmd_reset)

    reporting = sub.add_parser("report", help="an HTML report of a lab's last run")
    reporting.add_argument("lab", help="the lab's name or folder")
    reporting.set_defaults(func=_cmd_report)

    watching = sub.add_parser("watch", help="run a lab's checks again on each save")
    watching.add_argument("lab", help="the lab's name or folder")
    watching.add_argument("--backend", choices=list(BACKENDS), default="process")
    watching.set_defaults(func=_cmd_watch)

    hint = sub.add_parser("hint", help="the next hint of a lab")
    hint.add_argument("lab")
    hint.add_argument("number", nargs="?", type=int, help="a hint by number")
    hint.set_defaults(func=_cmd_hint)

    logs = sub.add_parser("logs", help="the services' logs of a lab's last run")
    logs.add_argument("lab")
    logs.add_argument("-n", "--lines", type=_positive(int), default=40)
    logs.set_defaults(func=_cmd_logs)

    up = sub.add_parser("up", help="start a lab and keep it running, to explore it by hand")
    up.add_argument("lab")
    up.add_argument("--solution", action="store_true", help="run the reference solution")
    up.add_argument("--seed", type=int, default=None)
    up.add_argument("--backend", choices=list(BACKENDS), default="process")
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="stop the lab started by 'up'")
    down.add_argument(
        "--grace",
        type=_positive(float),
        default=30.0,
        metavar="SECONDS",
        help="how long the lab has to stop after SIGTERM before it is killed (default 30)",
    )
    down.set_defaults(func=_cmd_down)

    sub.add_parser("doctor", help="check the installation").set_defaults(func=_cmd_doctor)
    setup = sub.add_parser(
        "setup",
        help="build or find toxiproxy-server, the linearizability checker and Prometheus",
    )
    setup.add_argument(
        "--prometheus",
        action="store_true",
        help="build Prometheus from its Go module when no package or copy is at hand "
        "(8-12 minutes; without it the first lab that needs Prometheus does)",
    )
    setup.set_defaults(func=_cmd_setup)
    return parser


_stopped_by: int | None = None  # the signal that stopped the run, for the exit code


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP take the Ctrl-C path, so every fixture tears down what it started;
    # the exit code still tells them apart (128 + the signal's number, as a shell does).
    global _stopped_by
    _stopped_by = signum
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    signal.signal(signal.SIGINT, _EARLY[signal.SIGINT] or signal.SIG_DFL)  # Ctrl-C: the try below
    try:
        # Parsing is inside: building the parser takes a good part of a second on a busy
        # machine, and a Ctrl-C then must end as quietly as one during the run.
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except ChaoslabError as exc:
        print(f"chaoslab: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Whoever read the output went away (`chaoslab check x | head`): stop quietly, as a
        # command killed by SIGPIPE does, without a second error when Python flushes stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        how = (
            "interrupted"
            if _stopped_by is None
            else f"interrupted by {signal.Signals(_stopped_by).name}"
        )
        print(f"\nchaoslab: {how}; everything the run started has been stopped.", file=sys.stderr)
        return 128 + (_stopped_by or signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
