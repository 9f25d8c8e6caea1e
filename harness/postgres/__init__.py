"""A real PostgreSQL per run for the labs that need a database: found on this machine, a data
folder copied from a cached `initdb` template, started with the run on both backends, and the
lock waits it logged, for checks (`harness.postgres.client`; the server side is
`harness.postgres.server`, which this package does not import: lab.py reads the spec here)."""

from harness.postgres.program import Postgres, find_postgres, install_postgres
from harness.postgres.spec import PostgresSpec

__all__ = ["Postgres", "PostgresSpec", "find_postgres", "install_postgres"]
