"""The accounts database: the PostgreSQL that every replica shares, and the migrations that
take its schema from one release to the next.

Each replica applies, when it starts, the migrations of its release that no one applied yet
(the database remembers which, in schema_version). Releases are deployed one replica at a time.
"""

import psycopg

from services import database

MIGRATING = 1  # the advisory lock a replica holds while it migrates

MIGRATIONS = {
    1: [
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT, balance INTEGER NOT NULL DEFAULT 0)"
    ],
    # Release 2: "name" becomes "full_name", as the new API documentation calls it.
    2: ["ALTER TABLE accounts RENAME COLUMN name TO full_name"],
}


def name_column(release: int) -> str:
    """The column that holds an account's name in `release`."""
    return "full_name" if release >= 2 else "name"


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
    return db
