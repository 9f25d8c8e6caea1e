"""Backends run a lab's services: as local processes (the default) or as containers."""

from harness.backends.base import Backend, ServiceHandle
from harness.backends.process import ProcessBackend

__all__ = ["Backend", "ProcessBackend", "ServiceHandle"]
