"""database: connects a replica to the PostgreSQL that every replica shares. Owned by the lab,
not by you."""

import os
import time

import psycopg

CONNECT_FOR = 10.0  # seconds: the server may still be starting when the replicas do


def open_shared() -> psycopg.Connection:
    """A connection to $DATABASE_URL in autocommit (each statement commits on its own; a
    transaction is yours: `with db.transaction():`), tried again while the server is not
    accepting connections yet."""
    deadline = time.monotonic() + CONNECT_FOR
    while True:
        try:
            # prepare_threshold=None: psycopg prepares a statement once it has run it 5 times,
            # and this connection outlives the other replica's migrations: a statement prepared
            # before an ALTER TABLE that changes the columns it returns fails after it with
            # "cached plan must not change result type".
            return psycopg.connect(
                os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=None
            )
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
