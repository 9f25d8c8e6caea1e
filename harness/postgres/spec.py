"""A lab's `[postgres]` table (no import of the server side: lab.py reads it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PostgresSpec:
    """The services that get `DATABASE_URL`: the run's database, straight (not proxied)."""

    users: tuple[str, ...] = ()
