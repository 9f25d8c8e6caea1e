"""The accounts database: one SQLite file that every replica shares, and the migrations that
take its schema from one release to the next.

Each replica applies, when it starts, the migrations of its release that no one applied yet
(the database remembers which, in schema_version). Releases are deployed one replica at a time,
so two releases always overlap: each must work with the data the one before it writes.

Wrong: release 2 backfills full_name at once and reads it, while release 1, still running beside
it, renames accounts in name only: their new names are not seen.
Rejected by: test_2_every_read_returns_the_last_write
"""

import os
import sqlite3
from pathlib import Path

from services import database

DATABASE = Path(os.environ["SHARED_DIR"]) / "accounts.db"
BATCH = 500  # rows per backfill transaction: short locks, traffic goes on between them

MIGRATIONS = {
    1: [
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT, balance INTEGER NOT NULL DEFAULT 0)"
    ],
    2: ["ALTER TABLE accounts ADD COLUMN full_name TEXT"],
    5: ["ALTER TABLE accounts DROP COLUMN name"],
}


def read_column(release: int) -> str:
    """The column an account's name is read from in `release`."""
    return "name" if release == 1 else "full_name"


def write_columns(release: int) -> list[str]:
    """The columns an account's name is written to in `release`."""
    if release == 1:
        return ["name"]
    return ["name", "full_name"] if release <= 3 else ["full_name"]


def connect(release: int) -> sqlite3.Connection:
    """A connection to the database, migrated up to `release`."""
    db = database.open_shared(DATABASE)
    db.execute("BEGIN IMMEDIATE")  # one replica migrates at a time
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    done = {v for (v,) in db.execute("SELECT version FROM schema_version")}
    for version in sorted(MIGRATIONS):
        if version <= release and version not in done:
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    db.execute("COMMIT")
    if release == 2:
        backfill(db)
    return db


def backfill(db: sqlite3.Connection) -> None:
    """Copy name into full_name wherever release 1's writes left them apart, a batch per
    transaction. Safe while release 2 runs: it writes both."""
    while True:
        copied = db.execute(
            "UPDATE accounts SET full_name = name WHERE rowid IN "
            "(SELECT rowid FROM accounts WHERE full_name IS NOT name LIMIT ?)",
            (BATCH,),
        ).rowcount
        if copied == 0:
            return
