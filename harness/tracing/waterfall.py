"""A few of a run's traces, kept for its HTML report as waterfalls: what a learner looks at
instead of Jaeger's UI (a Jaeger built from its Go module has none). Kept: the slowest trace,
the first one with an error, and the first one seen, each once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.tracing.client import Span, Trace

KEEP = 3


def pick(traces: Iterable[Trace]) -> list[tuple[str, Trace]]:
    """(why it was kept, trace), at most KEEP of them, the most telling first."""
    ordered = sorted((t for t in traces if t.spans), key=lambda t: min(s.start_us for s in t.spans))
    chosen: list[tuple[str, Trace]] = []
    if not ordered:
        return chosen
    slowest = max(ordered, key=_duration_us)
    chosen.append(("the slowest request", slowest))
    failed = next((t for t in ordered if any(s.is_error for s in t.spans)), None)
    if failed is not None and failed is not slowest:
        chosen.append(("the first request with an error", failed))
    first = ordered[0]
    if all(first is not t for _, t in chosen):
        chosen.append(("the first request", first))
    return chosen[:KEEP]


def _duration_us(trace: Trace) -> int:
    return max(s.end_us for s in trace.spans) - min(s.start_us for s in trace.spans)


def in_tree_order(trace: Trace) -> list[tuple[int, Span]]:
    """(depth, span) from each root down, children by start time: a waterfall's rows. A span
    whose parent is not in the trace (its caller's span, or one that never arrived) is a
    root."""
    ids = trace.by_id()
    roots = sorted((s for s in trace.spans if s.parent_id not in ids), key=lambda s: s.start_us)
    rows: list[tuple[int, Span]] = []
    seen: set[str] = set()

    def walk(span: Span, depth: int) -> None:
        if span.span_id in seen:
            return
        seen.add(span.span_id)
        rows.append((depth, span))
        for child in sorted(trace.children(span), key=lambda s: s.start_us):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return rows


def record(why: str, trace: Trace) -> dict[str, Any]:
    """JSON-ready: the trace's rows, times in milliseconds from its first span's start."""
    start = min(s.start_us for s in trace.spans)
    return {
        "why": why,
        "trace_id": trace.trace_id,
        "spans": [
            {
                "depth": depth,
                "service": span.service,
                "kind": span.kind,
                "name": span.name,
                "start_ms": round((span.start_us - start) / 1000, 3),
                "duration_ms": round(span.duration_ms, 3),
                "error": span.is_error,
                "status": span.tags.get("http.response.status_code"),
            }
            for depth, span in in_tree_order(trace)
        ],
    }
