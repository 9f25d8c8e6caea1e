"""chaoslab's harness: run a lab's services behind real Toxiproxy, inject faults, record a
history and judge it. Labs import from here and nowhere deeper.

The names load on first use (PEP 562), so `import harness.cli` starts fast and the CLI
can take over Ctrl-C before the heavy imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness._errors import (
        ChaoslabError,
        LabDefinitionError,
        PortInUse,
        RunError,
        ServiceNotReady,
        SetupError,
        ToxiproxyError,
        UnknownLabError,
    )
    from harness.artifacts import Artifact
    from harness.checkers import (
        CheckFailed,
        CheckResult,
        agree,
        at_most,
        exactly_once,
        expect,
        latency_below,
        no_lost_writes,
    )
    from harness.environment import (
        LabEnvironment,
        running,
    )
    from harness.faults import (
        FaultEvent,
        Faults,
        HttpControl,
        Timeline,
        all_of,
    )
    from harness.history import (
        History,
        Operation,
        percentile,
    )
    from harness.lab import (
        Lab,
        catalogue,
        find_lab,
        load_lab,
    )
    from harness.linearizability import linearizable
    from harness.nemesis import (
        Schedule,
        Step,
    )
    from harness.traffic import (
        Client,
        Traffic,
        TrafficRun,
    )
    from harness.waiting import hold, wait_until

_WHERE = {
    "Artifact": "harness.artifacts",
    "ChaoslabError": "harness._errors",
    "CheckFailed": "harness.checkers",
    "CheckResult": "harness.checkers",
    "Client": "harness.traffic",
    "FaultEvent": "harness.faults",
    "Faults": "harness.faults",
    "History": "harness.history",
    "HttpControl": "harness.faults",
    "Lab": "harness.lab",
    "LabDefinitionError": "harness._errors",
    "LabEnvironment": "harness.environment",
    "Operation": "harness.history",
    "PortInUse": "harness._errors",
    "RunError": "harness._errors",
    "Schedule": "harness.nemesis",
    "ServiceNotReady": "harness._errors",
    "SetupError": "harness._errors",
    "Step": "harness.nemesis",
    "Timeline": "harness.faults",
    "ToxiproxyError": "harness._errors",
    "Traffic": "harness.traffic",
    "TrafficRun": "harness.traffic",
    "UnknownLabError": "harness._errors",
    "agree": "harness.checkers",
    "all_of": "harness.faults",
    "at_most": "harness.checkers",
    "catalogue": "harness.lab",
    "exactly_once": "harness.checkers",
    "expect": "harness.checkers",
    "find_lab": "harness.lab",
    "hold": "harness.waiting",
    "latency_below": "harness.checkers",
    "linearizable": "harness.linearizability",
    "load_lab": "harness.lab",
    "no_lost_writes": "harness.checkers",
    "percentile": "harness.history",
    "running": "harness.environment",
    "wait_until": "harness.waiting",
}

__all__ = [
    "Artifact",
    "ChaoslabError",
    "CheckFailed",
    "CheckResult",
    "Client",
    "FaultEvent",
    "Faults",
    "History",
    "HttpControl",
    "Lab",
    "LabDefinitionError",
    "LabEnvironment",
    "Operation",
    "PortInUse",
    "RunError",
    "Schedule",
    "ServiceNotReady",
    "SetupError",
    "Step",
    "Timeline",
    "ToxiproxyError",
    "Traffic",
    "TrafficRun",
    "UnknownLabError",
    "agree",
    "all_of",
    "at_most",
    "catalogue",
    "exactly_once",
    "expect",
    "find_lab",
    "hold",
    "latency_below",
    "linearizable",
    "load_lab",
    "no_lost_writes",
    "percentile",
    "running",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
