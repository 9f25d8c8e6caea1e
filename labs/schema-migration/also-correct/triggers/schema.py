"""The accounts database: one SQLite file that every replica shares, and the migrations that
take its schema from one release to the next.

Each replica applies, when it starts, the migrations of its release that no one applied yet
(the database remembers which, in schema_version). Releases are deployed one replica at a time,
so two releases always overlap: each must work with the data the one before it writes.

Also correct: release 2 adds full_name with triggers that copy every write of name into it
(release 1's too), fills the rest, and reads full_name, writing name only; release 3 writes only
full_name; release 4 drops the triggers and name.
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
    2: [
        "ALTER TABLE accounts ADD COLUMN full_name TEXT",
        "CREATE TRIGGER name_inserted AFTER INSERT ON accounts WHEN NEW.full_name IS NULL "
        "BEGIN UPDATE accounts SET full_name = NEW.name WHERE id = NEW.id; END",
        "CREATE TRIGGER name_updated AFTER UPDATE OF name ON accounts "
        "BEGIN UPDATE accounts SET full_name = NEW.name WHERE id = NEW.id; END",
    ],
    4: [
        "DROP TRIGGER name_inserted",
        "DROP TRIGGER name_updated",
        "ALTER TABLE accounts DROP COLUMN name",
    ],
}


def read_column(release: int) -> str:
    """The column an account's name is read from in `release`."""
    return "name" if release == 1 else "full_name"


def write_columns(release: int) -> list[str]:
    """The columns an account's name is written to in `release`."""
    if release == 1:
        return ["name"]
    return ["name"] if release == 2 else ["full_name"]


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
        backfill(db)  # the triggers keep what release 1 writes from now on
    return db


def backfill(db: sqlite3.Connection) -> None:
    """Copy name into full_name where only release 1 wrote it, a batch per transaction."""
    while True:
        copied = db.execute(
            "UPDATE accounts SET full_name = name WHERE rowid IN "
            "(SELECT rowid FROM accounts WHERE full_name IS NULL AND name IS NOT NULL LIMIT ?)",
            (BATCH,),
        ).rowcount
        if copied == 0:
            return
