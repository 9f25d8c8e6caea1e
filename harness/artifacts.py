"""Files a check writes for the learner to open after the run (a checker's picture of a
violation): written into the run's logs folder, found afterwards where the logs are kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Artifact:
    """`path`: where to write it now; `kept`: where the learner finds it once the run ends."""

    path: Path
    kept: Path
