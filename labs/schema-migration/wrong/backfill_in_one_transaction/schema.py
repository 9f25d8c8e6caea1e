"""The accounts database: the PostgreSQL that every replica shares, and the migrations that
take its schema from one release to the next.

Each replica applies, when it starts, the migrations of its release that no one applied yet
(the database remembers which, in schema_version). Releases are deployed one replica at a time,
so two releases always overlap: each must work with the data the one before it writes.

Wrong: the backfill is one UPDATE of every row where name and full_name differ: one
transaction, which holds the lock of every row it changed until it commits. A rename of one of
those rows on release 2, serving beside it, waits until then (a second or two, on 300,000 rows).
Rejected by: test_4_the_backfill_holds_no_lock_that_stalls_traffic
"""

import psycopg
from services import database

MIGRATING = 1  # the advisory lock a replica holds while it migrates

MIGRATIONS = {
    1: [
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT, balance INTEGER NOT NULL DEFAULT 0)"
    ],
    2: ["ALTER TABLE accounts ADD COLUMN full_name TEXT"],
    5: ["ALTER TABLE accounts DROP COLUMN name"],
}


def read_column(release: int) -> str:
    """The column an account's name is read from in `release`."""
    return "name" if release <= 2 else "full_name"


def write_columns(release: int) -> list[str]:
    """The columns an account's name is written to in `release`."""
    if release == 1:
        return ["name"]
    return ["name", "full_name"] if release <= 3 else ["full_name"]


def connect(release: int) -> psycopg.Connection:
    """A connection to the database, migrated up to `release`."""
    db = database.open_shared()
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATING,))  # one replica at a time
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        done = {v for (v,) in db.execute("SELECT version FROM schema_version")}
        for version in sorted(MIGRATIONS):
            if version <= release and version not in done:
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (%s)", (version,))
    if release == 3:
        backfill(db)
    return db


def backfill(db: psycopg.Connection) -> None:
    """Copy name into full_name wherever release 1's writes left them apart, in one
    statement. Safe while release 2 runs: it writes both."""
    db.execute("UPDATE accounts SET full_name = name WHERE full_name IS DISTINCT FROM name")
