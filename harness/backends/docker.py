"""The Docker backend (placeholder until it lands): the same labs as containers."""

from __future__ import annotations

from pathlib import Path

from harness._errors import SetupError
from harness.runs import Run


class DockerBackend:
    name = "docker"
    listen_host = "0.0.0.0"

    def __init__(self, run: Run, workdir: Path) -> None:
        raise SetupError("the docker backend is not available yet; use --backend process")
