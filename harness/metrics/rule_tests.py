"""When an alerting rule fires, over hours of made-up traffic: Prometheus's own rule unit tests
(`promtool test rules`), run by the harness.

An alert's windows are hours and minutes (an error budget's burn over 1 h and 5 min), and no
check can wait that long; promtool evaluates the real rule engine over synthetic series in
milliseconds, at any time scale. The harness writes the series (counters built from rates per
segment of time) and asks, at each evaluation time, whether the alert was firing: one
`promql_expr_test` per time that expects no firing alert, so promtool's failures are exactly
the times it fired.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._errors import RunError
from harness.metrics.program import Prometheus

STEP_SECONDS = 10  # one sample of every series each 10 s: a 10-second spike is one step


@dataclass(frozen=True)
class Segment:
    """`minutes` of traffic at `per_minute` requests a minute, a share `errors` of them
    failing (5xx) and a share `refused` turned away as the client's fault (4xx: a declined
    card is not an outage). A segment shorter than a minute is fine (`minutes=1/6` is ten
    seconds)."""

    minutes: float
    per_minute: float
    errors: float
    refused: float = 0.0


@dataclass(frozen=True)
class Traffic:
    """Requests of one route over time, as counters by status class (`code="2xx"`, `"5xx"`,
    and `"4xx"` when a segment refuses any)."""

    metric: str
    labels: dict[str, str]
    segments: Sequence[Segment]

    def series(self) -> list[tuple[str, str]]:
        """(series selector, promtool values) of its counters, one per status class."""
        good, bad, refused = [0.0], [0.0], [0.0]
        for segment in self.segments:
            steps = round(segment.minutes * 60 / STEP_SECONDS)
            per_step = segment.per_minute * STEP_SECONDS / 60
            for _ in range(steps):
                good.append(good[-1] + per_step * (1 - segment.errors - segment.refused))
                bad.append(bad[-1] + per_step * segment.errors)
                refused.append(refused[-1] + per_step * segment.refused)
        classes = [("2xx", good), ("5xx", bad)]
        if any(segment.refused for segment in self.segments):
            classes.insert(1, ("4xx", refused))
        return [
            (
                _selector(self.metric, {**self.labels, "code": code}),
                " ".join(f"{v:g}" for v in values),
            )
            for code, values in classes
        ]


def firing_minutes(
    program: Prometheus, rule_file: Path, alert: str, traffic: Sequence[Traffic], at: Sequence[int]
) -> list[int]:
    """The minutes among `at` at which `alert` from `rule_file` was firing, over `traffic`.

    Raises RunError if promtool fails for another reason (the rule file itself is checked
    with `promtool check rules` first, by the caller)."""
    query = f'count(ALERTS{{alertname="{alert}", alertstate="firing"}})'
    test = {
        "rule_files": [str(rule_file.resolve())],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": f"{STEP_SECONDS}s",
                "input_series": [
                    {"series": selector, "values": values}
                    for t in traffic
                    for selector, values in t.series()
                ],
                "promql_expr_test": [
                    {"expr": query, "eval_time": f"{minute}m", "exp_samples": []} for minute in at
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory(prefix="chaoslab-ruletest-") as work:
        test_file = Path(work) / "test.yml"
        test_file.write_text(json.dumps(test))  # JSON is YAML
        try:
            done = subprocess.run(
                [str(program.promtool), "test", "rules", str(test_file)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RunError(f"promtool test rules could not run: {exc}") from exc
    said = done.stdout + done.stderr
    if done.returncode == 0:
        return []
    fired = sorted({_minutes(m.group(1)) for m in _FIRED.finditer(said)})
    if not fired:
        raise RunError(f"promtool test rules failed in a way the harness cannot read:\n{said}")
    return [minute for minute in at if minute in fired]


_FIRED = re.compile(r"time: ([0-9hms.]+),\s*exp: nil\s*got: \{\} 1E\+00")
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def _minutes(duration: str) -> int:
    """A Go duration ("1h30m", "45m", "1h0m30s") in whole minutes."""
    scale = {"h": 60.0, "m": 1.0, "s": 1 / 60}
    return round(sum(float(n) * scale[unit] for n, unit in _PART.findall(duration)))


def _selector(metric: str, labels: dict[str, str]) -> str:
    inside = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inside}}}"
