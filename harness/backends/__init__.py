"""Backends run a lab's services: as local processes (the default) or as containers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

from harness._errors import SetupError
from harness.backends.base import Backend, ServiceHandle
from harness.backends.process import ProcessBackend
from harness.runs import Run

BackendFactory = Callable[[Run, Path], Backend]
BACKENDS = ("process", "docker")


def backend_factory(name: str) -> BackendFactory:
    """The factory for a backend by name; docker is imported only when asked for."""
    if name == "process":
        return ProcessBackend
    if name == "docker":
        from harness.backends.docker import DockerBackend  # noqa: PLC0415 - optional, heavy

        return cast(BackendFactory, DockerBackend)
    raise SetupError(f"unknown backend '{name}'. Choose one of: {', '.join(BACKENDS)}.")


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendFactory",
    "ProcessBackend",
    "ServiceHandle",
    "backend_factory",
]
