"""The accounts database: the PostgreSQL that every replica shares, and the migrations that
take its schema from one release to the next.

Each replica applies, when it starts, the migrations of its release that no one applied yet
(the database remembers which, in schema_version). Releases are deployed one replica at a time,
so two releases always overlap: each must work with the data the one before it writes.

Renaming name to full_name, expand and contract:
  release 2  adds full_name; writes both columns; still reads name (release 1 writes only name)
  release 3  copies name into full_name wherever they differ (release 1 wrote only name: it
             left some rows without a full_name, and others with an older one), in batches;
             reads full_name; writes both (release 2 still reads name)
  release 4  writes only full_name (release 3 reads it)
  release 5  drops name: no release that uses it is left

Wrong: release 2 reads full_name where it is set, and name where it is not. Release 1, still
running beside it, renames accounts in name only: an account that release 2 renamed and release
1 renamed after it answers release 2's name, an older one, until release 3's backfill.
Rejected by: test_2_every_read_returns_the_last_write
"""

import psycopg
from services import database

MIGRATING = 1  # the advisory lock a replica holds while it migrates
# Rows per backfill transaction: each holds its rows' locks for a few milliseconds, and the
# renames that traffic makes go on between two.
BATCH = 1000

MIGRATIONS = {
    1: [
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT, balance INTEGER NOT NULL DEFAULT 0)"
    ],
    2: ["ALTER TABLE accounts ADD COLUMN full_name TEXT"],
    5: ["ALTER TABLE accounts DROP COLUMN name"],
}


def read_column(release: int) -> str:
    """The column an account's name is read from in `release`."""
    if release == 2:
        return "COALESCE(full_name, name)"  # the new column where it is set already
    return "name" if release < 2 else "full_name"


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
    """Copy name into full_name wherever release 1's writes left them apart, one short
    transaction per batch of ids (autocommit). Safe while release 2 runs: it writes both.

    Each batch starts after the last id of the one before (keyset pagination): the index finds
    it at once, where `WHERE full_name IS DISTINCT FROM name LIMIT n` would scan again from
    the table's start every batch."""
    last = ""
    while True:
        (end,) = db.execute(
            "SELECT max(id) FROM (SELECT id FROM accounts WHERE id > %s ORDER BY id LIMIT %s) b",
            (last, BATCH),
        ).fetchone()
        if end is None:
            return
        db.execute(
            "UPDATE accounts SET full_name = name "
            "WHERE id > %s AND id <= %s AND full_name IS DISTINCT FROM name",
            (last, end),
        )
        last = end
