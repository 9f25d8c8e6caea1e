"""`chaoslab check LAB --report` and `chaoslab report LAB`: one self-contained HTML file of a
lab's last run. The verdict; a timeline with every operation of the history (latency against
start time, coloured by outcome) and the fault windows shaded; for a lab with a dashboard,
its panels drawn from the run's Prometheus; each check's story; and the pictures the checks
left (a linearizability checker's visualization), embedded in it.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from harness._errors import UsageError
from harness.lab import Lab
from harness.recording import RECORD

VERDICT = "verdict.json"
REPORT = "report.html"
COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#ef6c00", "invoke": "#6d4c41"}
OUTCOMES = {"ok": "answered", "fail": "failed", "info": "outcome unknown", "invoke": "no answer"}
MAX_EMBEDDED = 8_000_000  # bytes of a picture the report embeds; a larger one is only linked
MAX_LABELS = 12  # fault windows named on the plot; more would hide it (all are listed below)


def _figure(record: dict[str, Any], title: str) -> go.Figure:
    fig = go.Figure()
    ops = record.get("ops", [])
    last = max(
        [o["end"] or o["start"] for o in ops] + [f["end"] or 0 for f in record["faults"]] + [0]
    )
    for status, colour in COLOURS.items():
        chosen = [o for o in ops if o["status"] == status]
        if not chosen:
            continue
        fig.add_trace(
            go.Scatter(
                x=[o["start"] for o in chosen],
                y=[
                    max(1.0, ((o["end"] if o["end"] is not None else last) - o["start"]) * 1000)
                    for o in chosen
                ],
                mode="markers",
                name=f"{OUTCOMES[status]} ({len(chosen)})",
                marker={
                    "color": colour,
                    "size": 6,
                    "opacity": 0.75,
                    "symbol": "circle" if status in ("ok", "fail") else "x",
                },
                text=[
                    f"{o['f']} {o['value']} by client {o['client']}: {o['status']}"
                    + (f" ({o['error']})" if o["error"] else "")
                    for o in chosen
                ],
                hovertemplate="%{text}<br>started at %{x:.2f} s, took %{y:.0f} ms<extra></extra>",
            )
        )
    _shade_faults(fig, record.get("faults", []), last, labels=True)
    fig.update_layout(
        title=title,
        xaxis_title="seconds since the checks began (shaded: a fault was on)",
        yaxis_title="latency (ms, log scale)",
        yaxis_type="log",
        height=520,
        template="plotly_white",
        showlegend=True,
        legend={"orientation": "h", "y": -0.18},
        margin={"t": 60, "r": 20, "l": 60, "b": 80},
    )
    return fig


def _shade_faults(fig: go.Figure, faults: list[dict[str, Any]], last: float, labels: bool) -> None:
    for i, fault in enumerate(faults):
        end = fault["end"] if fault["end"] is not None else last
        named = labels and i < MAX_LABELS  # (an empty annotation would read "new text")
        fig.add_vrect(
            x0=fault["start"],
            x1=max(end, fault["start"] + 0.01),
            fillcolor="#1565c0",
            opacity=0.12,
            line_width=0,
            **(
                {
                    "annotation_text": html.escape(fault["description"][:60]),
                    "annotation_position": "top left",
                    "annotation_font_size": 9,
                }
                if named
                else {}
            ),
        )


def _panel_figure(panel: dict[str, Any], faults: list[dict[str, Any]]) -> go.Figure:
    """One dashboard panel: its series over the run, the fault windows shaded."""
    fig = go.Figure()
    last = 0.0
    for series in panel.get("series", []):
        points = [(t, v) for t, v in series["points"] if not math.isnan(v)]  # NaN: no data
        last = max([last] + [t for t, _ in points])
        fig.add_trace(
            go.Scatter(
                x=[t for t, _ in points],
                y=[v for _, v in points],
                mode="lines",
                name=series["name"],
            )
        )
    _shade_faults(fig, faults, last, labels=False)
    unit = panel.get("unit") or ""
    fig.update_layout(
        title={"text": html.escape(panel.get("title", "")), "font": {"size": 14}},
        xaxis_title="seconds since the checks began",
        yaxis_title=html.escape(unit),
        yaxis_tickformat=".1%" if unit == "percentunit" else None,
        height=320,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.3},
        margin={"t": 50, "r": 20, "l": 60, "b": 60},
    )
    if panel.get("error"):
        fig.add_annotation(text=html.escape(panel["error"][:120]), showarrow=False)
    elif not panel.get("series"):
        fig.add_annotation(text="no data", showarrow=False)
    return fig


def _panels_html(record: dict[str, Any]) -> str:
    panels = record.get("panels", [])
    if not panels:
        return ""
    faults = record.get("faults", [])
    figures = "".join(
        '<div class="panel">'
        + _panel_figure(panel, faults).to_html(
            include_plotlyjs=False, full_html=False, div_id=f"panel-{i}"
        )
        + "</div>"
        for i, panel in enumerate(panels)
    )
    return (
        "<h2>Metrics</h2><p>The lab's dashboard (<code>dashboards/</code>), each panel's "
        "queries run against this run's Prometheus; shaded: a fault was on. Prometheus "
        "scrapes from about 5 s after it started: a rate needs two scrapes, so traffic "
        "before that shows only in the counters' first values.</p>"
        f'<div class="panels" id="panels">{figures}</div>'
    )


NBSP = "\u00a0"  # an indent plotly keeps (it strips leading spaces)


def _waterfall(trace: dict[str, Any]) -> go.Figure:
    """One trace: a bar per span, from its start to its end, indented by depth; red: ERROR."""
    rows = trace.get("spans", [])
    labels = [
        f"{NBSP * 3 * row['depth']}{row['service']} {row['kind']}: {row['name']}"
        + (f" ({row['status']})" if row.get("status") else "")
        for row in rows
    ]
    fig = go.Figure(
        go.Bar(
            y=list(range(len(rows))),
            x=[max(row["duration_ms"], 0.2) for row in rows],
            base=[row["start_ms"] for row in rows],
            orientation="h",
            marker_color=["#c62828" if row["error"] else "#1565c0" for row in rows],
            text=[f"{row['duration_ms']:.1f} ms" for row in rows],
            textposition="outside",
            hovertext=labels,
            hoverinfo="text+x",
        )
    )
    fig.update_layout(
        title={
            "text": html.escape(f"{trace.get('why', '')}: trace {trace.get('trace_id', '')}"),
            "font": {"size": 14},
        },
        xaxis_title="milliseconds from the trace's first span",
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(rows))),
            "ticktext": [html.escape(label) for label in labels],
            "autorange": "reversed",
        },
        height=90 + 28 * len(rows),
        template="plotly_white",
        margin={"t": 50, "r": 90, "l": 330, "b": 50},
        showlegend=False,
    )
    return fig


def _traces_html(record: dict[str, Any]) -> str:
    traces = record.get("traces", [])
    if not traces:
        return ""
    figures = "".join(
        _waterfall(trace).to_html(include_plotlyjs=False, full_html=False, div_id=f"trace-{i}")
        for i, trace in enumerate(traces)
    )
    return (
        "<h2>Traces</h2><p>A few of this run's traces, from its Jaeger: each bar a span, from "
        "its start to its end, under the span it is a child of; red: the span says ERROR. A "
        "gap between a CLIENT span and its callee's SERVER span is time on the network.</p>"
        f'<div id="traces">{figures}</div>'
    )


def _until(end: float | None) -> str:
    return "the end" if end is None else f"{end:.2f} s"


def build(lab: Lab, verdict: dict[str, Any], record: dict[str, Any], folder: Path) -> str:
    """The report's HTML, plotly.js inlined: it opens anywhere, offline."""
    checks = verdict.get("checks", [])
    passed = sum(1 for c in checks if c.get("outcome") == "passed")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.get("began_wall", 0)))
    which = verdict.get("variant") or (
        "reference solution" if verdict.get("solution") else "your code"
    )
    head = (
        f"{passed} of {len(checks)} checks pass"
        if not verdict.get("setup_error")
        else "the lab could not run"
    )
    plot = _figure(record, f"{lab.title}: every operation of the run").to_html(
        include_plotlyjs=True, full_html=False, div_id="timeline"
    )
    stories = []
    for check in checks:
        outcome = check.get("outcome", "")
        css = "pass" if outcome == "passed" else "fail"
        stories.append(
            f'<section class="check {css}"><h3>{html.escape(outcome.upper())} '
            f"{html.escape(check.get('name', ''))} ({check.get('duration', 0):.1f} s)</h3>"
            f"<pre>{html.escape(check.get('message', '') or '')}</pre></section>"
        )
    faults = "".join(
        f"<li>{f['start']:.2f} s to {_until(f['end'])}: {html.escape(f['description'])}</li>"
        for f in record.get("faults", [])
    )
    pictures = "".join(_picture(p) for p in sorted(folder.glob("*.html")) if p.name != REPORT)
    setup = verdict.get("setup_error") or ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(lab.slug)}: {html.escape(head)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
.verdict {{ font-size: 1.3em; }}
.check {{ border-left: 5px solid #999; padding: 0 1em; margin: 1em 0; }}
.check.pass {{ border-color: #2e7d32; }} .check.fail {{ border-color: #c62828; }}
pre {{ white-space: pre-wrap; font-size: 0.9em; }}
.panels {{ display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em; }}
</style></head><body>
<h1>{html.escape(lab.title)}</h1>
<p class="verdict" id="verdict">{html.escape(head)} ({html.escape(which)}), seed
{verdict.get("seed")}, {when}.</p>
{f"<pre>{html.escape(setup)}</pre>" if setup else ""}
{plot}
{_panels_html(record)}
{_traces_html(record)}
<h2>The checks</h2>
{"".join(stories)}
<h2>Faults ({len(record.get("faults", []))})</h2><ul id="faults">{faults}</ul>
{f"<h2>Pictures the checks left</h2>{pictures}" if pictures else ""}
</body></html>
"""


def _picture(path: Path) -> str:
    """A picture a check left (porcupine's visualization: a page of its own, with its script),
    embedded in the report so that the file stays whole when it is mailed or attached, and
    linked too; one too large to embed is only linked."""
    name = html.escape(path.name)
    link = f'<p><a href="{name}">{name}</a> (open it alone)</p>'
    if path.stat().st_size > MAX_EMBEDDED:
        return f'<h3 id="picture-{name}">{name}</h3>{link}'
    page = html.escape(path.read_text(encoding="utf-8", errors="replace"), quote=True)
    return (
        f'<h3 id="picture-{name}">{name}</h3><iframe class="picture" title="{name}" '
        f'srcdoc="{page}" style="width: 100%; height: 640px; border: 1px solid #ccc"></iframe>'
        f"{link}"
    )


def write_report(lab: Lab, folder: Path) -> Path:
    """Write report.html for the run whose verdict and record are in `folder`."""
    try:
        verdict = json.loads((folder / VERDICT).read_text(encoding="utf-8"))
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no run of '{lab.slug}' to report on ({folder} holds no verdict and record).\n"
            f"  Fix: run 'chaoslab check {lab.slug} --report'."
        ) from None
    except ValueError as exc:
        raise UsageError(
            f"the last run's files in {folder} are damaged ({exc}).\n  Fix: run "
            f"'chaoslab check {lab.slug} --report' again."
        ) from None
    path = folder / REPORT
    path.write_text(build(lab, verdict, record, folder), encoding="utf-8")
    return path
