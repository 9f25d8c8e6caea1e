"""The errors chaoslab raises, so that a user always reads what went wrong and what to do.

ChaoslabError                  anything the harness reports to a person
├── LabDefinitionError         a lab (its lab.toml or its folder) is invalid: fix the file
├── UnknownLabError            no lab has that name
├── UsageError                 the command line asks for what cannot be done (--json into no folder)
├── SetupError                 a tool is missing or broken (toxiproxy-server, docker, the cache)
└── RunError                   something failed while a lab ran
    ├── ServiceNotReady        a service did not become ready in time
    │   └── PortInUse          ... because another program took its port
    └── ToxiproxyError         the Toxiproxy server refused or did not answer a request
"""

from __future__ import annotations


class ChaoslabError(Exception):
    """Base of every error the harness shows to a person; its text says what to do."""


class LabDefinitionError(ChaoslabError):
    """A lab's files are invalid; the message names the file, the key and the fix."""

    def __init__(self, path: object, key: str | None, problem: str, fix: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: [{key}]" if key else self.path
        super().__init__(f"{where}: {problem}\n  Fix: {fix}")


class UnknownLabError(ChaoslabError):
    """The name matches no lab in the catalogue."""


class UsageError(ChaoslabError):
    """An argument or a setting of the command line cannot be used as given."""


class SetupError(ChaoslabError):
    """A tool the harness needs is missing or broken."""


class RunError(ChaoslabError):
    """Something failed while a lab was running."""


class ServiceNotReady(RunError):
    """A service did not answer its readiness probe in time."""


class LearnerServiceDown(ServiceNotReady):
    """A service running the learner's code did not come back between checks (after a crash,
    its own files may not let it start): a verdict on that code, not a run that could not go."""

    def __init__(self, service: str, cause: ServiceNotReady) -> None:
        super().__init__(
            f"{service} (your code) did not start again after the previous check: it has to"
            f" come back after a crash, from whatever it left on disk.\n{cause}"
        )
        self.service = service


class PortInUse(ServiceNotReady):
    """A service could not listen: another program took its port (`port`, when the log says)."""

    def __init__(self, message: str, port: int | None = None) -> None:
        super().__init__(message)
        self.port = port


class ToxiproxyError(RunError):
    """The Toxiproxy server refused a request or did not answer in time."""
