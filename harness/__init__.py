"""chaoslab's harness: run a lab's services behind real Toxiproxy, inject faults, record a
history and judge it. Labs import from here and nowhere deeper.
"""

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
from harness.environment import LabEnvironment, running
from harness.faults import FaultEvent, Faults, HttpControl, Timeline, all_of
from harness.history import History, Operation, percentile
from harness.lab import Lab, catalogue, find_lab, load_lab
from harness.nemesis import Schedule, Step
from harness.traffic import Client, Traffic, TrafficRun

__all__ = [
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
    "latency_below",
    "load_lab",
    "no_lost_writes",
    "percentile",
    "running",
]
