"""The accounts database: the PostgreSQL that every replica shares, and the migrations that
take its schema from one release to the next.

Each replica applies, when it starts, the migrations of its release that no one applied yet
(the database remembers which, in schema_version). Releases are deployed one replica at a time,
so two releases always overlap: each must work with the data the one before it writes.

Also correct: release 2 adds full_name with triggers that copy every write of name into it
(release 1's too), fills the rest, and reads full_name, writing name only; release 3 writes only
full_name; release 4 drops the triggers and name.
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
    2: [
        "ALTER TABLE accounts ADD COLUMN full_name TEXT",
        """CREATE FUNCTION copy_name() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.full_name := NEW.name;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER name_inserted BEFORE INSERT ON accounts "
        "FOR EACH ROW WHEN (NEW.full_name IS NULL) EXECUTE FUNCTION copy_name()",
        "CREATE TRIGGER name_updated BEFORE UPDATE OF name ON accounts "
        "FOR EACH ROW EXECUTE FUNCTION copy_name()",
    ],
    4: [
        "DROP TRIGGER name_inserted ON accounts",
        "DROP TRIGGER name_updated ON accounts",
        "DROP FUNCTION copy_name()",
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
    if release == 2:
        backfill(db)  # the triggers keep what release 1 writes from now on
    return db


def backfill(db: psycopg.Connection) -> None:
    """Copy name into full_name where only release 1 wrote it, one short transaction per batch
    of ids (autocommit), each batch after the last id of the one before."""
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
            "WHERE id > %s AND id <= %s AND full_name IS NULL AND name IS NOT NULL",
            (last, end),
        )
        last = end
