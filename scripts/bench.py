"""`make bench`: how fast the learner's loop is, and what the proxies cost.

Prints one table: lab start time (services ready, proxies made) and `chaoslab check` wall time
per lab for the starter and the solution, on the process backend and, when an engine answers,
on the docker backend; the latency a proxied link adds over a direct one (no toxic); how
accurately an injected latency is applied; and the linearizability check of porcupine's largest
kv histories through the Python API against porcupine's own time for them.
`make bench BENCH_ARGS="--backend process"` narrows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import ChaoslabError, Faults, LabEnvironment, catalogue, load_lab  # noqa: E402
from harness.history import percentile  # noqa: E402

PING = ROOT / "tests" / "fixtures" / "labs" / "ping"
Row = tuple[str, str, str]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def start_times(repeats: int, backend: str) -> list[Row]:
    rows = []
    for lab in catalogue():
        totals = []
        for _ in range(repeats):
            with LabEnvironment(lab, backend_name=backend) as env:
                totals.append(env.timings.total)
        rows.append(
            (
                f"lab start [{backend}]: {lab.slug}",
                ms(statistics.median(totals)),
                f"median of {repeats}; min {ms(min(totals))}, max {ms(max(totals))}",
            )
        )
    return rows


def check_times(backend: str) -> list[Row]:
    rows = []
    for lab in catalogue():
        for solution in (False, True):
            args = [sys.executable, "-m", "harness.cli", "check", lab.slug, "--json-only",
                    "--backend", backend]  # fmt: skip
            if solution:
                args.append("--solution")
            start = time.monotonic()
            code = subprocess.run(args, capture_output=True, check=False).returncode
            took = time.monotonic() - start
            which = "solution" if solution else "starter"
            verdict = "pass" if code == 0 else "fail" if code == 1 else f"exit {code}"
            rows.append((f"check [{backend}]: {lab.slug} ({which})", f"{took:.1f} s", verdict))
    return rows


def sample(url: str, count: int) -> list[float]:
    out = []
    with httpx.Client(timeout=10, trust_env=False) as client:
        client.get(url)  # warm the connection
        for _ in range(count):
            start = time.perf_counter()
            client.get(url).raise_for_status()
            out.append(time.perf_counter() - start)
    return out


def proxy_costs(count: int) -> list[Row]:
    rows = []
    with LabEnvironment(load_lab(PING)) as env:
        direct = sample(f"{env.direct_url('back')}/ping", count)
        proxied = sample(f"{env.url('back')}/ping", count)
        for q in (50, 99):
            added = percentile(proxied, q) - percentile(direct, q)
            rows.append(
                (
                    f"proxy overhead p{q}",
                    ms(added),
                    f"direct {ms(percentile(direct, q))}, proxied "
                    f"{ms(percentile(proxied, q))}; {count} requests, keep-alive",
                )
            )
        faults = Faults(env)
        for injected in (100, 500):
            with faults.latency("checks -> back", injected):
                observed = sample(f"{env.url('back')}/ping", 20)
            p50 = percentile(observed, 50) - percentile(proxied, 50)
            rows.append(
                (
                    f"injected latency {injected} ms",
                    ms(p50),
                    f"p50 added over the unfaulted proxy; error {ms(p50 - injected / 1000)}",
                )
            )
    return rows


def porcupine_times(repeats: int) -> list[Row]:
    """The largest kv histories in porcupine's module (50 clients), through the Python API
    (encoding, the program's start, the JSON both ways) against porcupine's own benchmark."""
    import re  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from harness.linearizability import linearizable  # noqa: PLC0415
    from tests.integration.test_porcupine_agreement import kv_history, module_dir  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as work:
        copy = Path(work) / "porcupine"
        shutil.copytree(module_dir(), copy)
        copy.chmod(0o755)
        own = subprocess.run(
            ["go", "test", "-run", "^$", "-bench", "^BenchmarkKv50Clients(Ok|Bad)$",
             "-benchtime", f"{repeats}x", "."],
            cwd=copy, capture_output=True, text=True, check=False,
        )  # fmt: skip
    theirs = {
        name: float(ns) / 1e9
        for name, ns in re.findall(
            r"BenchmarkKv50Clients(Ok|Bad)\S*\s+\d+\s+(\d+) ns/op", own.stdout
        )
    }
    rows = []
    for name, verdict in (("Ok", "c50-ok"), ("Bad", "c50-bad")):
        history = kv_history(module_dir() / "test_data" / "kv" / f"{verdict}.txt")
        mine = theirs[name] * 1000 if name in theirs else float("nan")
        for story in (False, True):
            took = []
            for _ in range(repeats):
                begin = time.perf_counter()
                result = linearizable(history, model="kv", timeout=60, explain=5 if story else 0)
                took.append(time.perf_counter() - begin)
            what = "verdict and story" if story else "verdict only"
            rows.append(
                (f"linearizable: kv {verdict}, {what}", ms(statistics.median(took)),
                 f"median of {repeats}; {len(history)} operations, "
                 f"{'linearizable' if result.valid else 'not linearizable'}; "
                 f"porcupine's own benchmark {mine:.1f} ms")
            )  # fmt: skip
    return rows


def docker_available() -> bool:
    from harness.backends.docker import connect  # noqa: PLC0415 - optional

    try:
        connect(timeout=5).close()
    except ChaoslabError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--skip-checks", action="store_true")
    parser.add_argument(
        "--backend", action="append", choices=["process", "docker"],
        help="backends to measure (default: process, and docker when an engine answers)",
    )  # fmt: skip
    args = parser.parse_args()
    backends = args.backend or (["process", "docker"] if docker_available() else ["process"])
    rows: list[Row] = []
    for backend in backends:
        rows += start_times(args.repeats, backend)
    rows += proxy_costs(args.requests)
    rows += porcupine_times(args.repeats)
    if not args.skip_checks:
        for backend in backends:
            rows += check_times(backend)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"chaoslab bench ({', '.join(backends)}; {time.strftime('%Y-%m-%d %H:%M')}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end)")  # fmt: skip
    print(f"| {'what'.ljust(widths[0])} | {'value'.ljust(widths[1])} | notes")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|------")
    for what, value, note in rows:
        print(f"| {what.ljust(widths[0])} | {value.ljust(widths[1])} | {note}")


if __name__ == "__main__":
    main()
