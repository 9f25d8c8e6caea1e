"""database: opens the SQLite file that every replica shares. Owned by the lab, not by you."""

import sqlite3
import time
from pathlib import Path


def open_shared(path: Path) -> sqlite3.Connection:
    """A connection to `path` in WAL mode (readers never wait for a writer) and in autocommit
    (BEGIN and COMMIT are yours), that waits up to 10 s for another connection's lock."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    # Two replicas that start at once race to turn a new file to WAL, and the loser's PRAGMA
    # fails at once ("database is locked") instead of waiting for the lock: try it again.
    for _ in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError:
            time.sleep(0.05)
    db.execute("PRAGMA journal_mode=WAL")  # still locked after 5 s: let the error tell it
    return db
