"""Lock waits read from PostgreSQL's log: granted ones with their length and statement, ones
still waiting when the log ends, and nothing from lines that are not lock waits."""

from harness.postgres.client import LockWait, parse_lock_waits

STAMP = "2026-11-29 22:00:0{s}.250 UTC [{pid}] "
LOG = [
    STAMP.format(s=1, pid=41) + "LOG:  process 41 still waiting for ShareLock on transaction "
    "812 after 100.123 ms",
    STAMP.format(s=1, pid=41) + "DETAIL:  Process holding the lock: 40. Wait queue: 41.",
    STAMP.format(s=1, pid=41) + 'CONTEXT:  while updating tuple (0,5) in relation "accounts"',
    STAMP.format(s=1, pid=41) + "STATEMENT:  INSERT INTO accounts (id, name) VALUES ($1, $2)",
    STAMP.format(s=2, pid=41) + "LOG:  process 41 acquired ShareLock on transaction 812 after "
    "1210.5 ms",
    STAMP.format(s=2, pid=41) + "STATEMENT:  INSERT INTO accounts (id, name) VALUES ($1, $2)",
    STAMP.format(s=3, pid=43) + "LOG:  checkpoint starting: time",
    STAMP.format(s=4, pid=44) + "LOG:  process 44 still waiting for AccessExclusiveLock on "
    "relation 16384 of database 5 after 100.0 ms",
    STAMP.format(s=4, pid=44) + "STATEMENT:  ALTER TABLE accounts DROP COLUMN name",
]


def test_a_granted_wait_has_its_whole_length_and_its_statement():
    waits = parse_lock_waits(LOG)

    granted = [w for w in waits if w.granted]
    assert granted == [
        LockWait(
            1.2105,
            "ShareLock on transaction 812",
            "INSERT INTO accounts (id, name) VALUES ($1, $2)",
            41,
            granted[0].at,
        )
    ]
    assert granted[0].at is not None
    assert str(granted[0]).startswith("a statement waited 1.21 s for ShareLock on transaction 812")


def test_a_wait_never_granted_is_kept_with_what_it_had_waited():
    (pending,) = [w for w in parse_lock_waits(LOG) if not w.granted]

    assert pending.pid == 44
    assert pending.waited == 0.1
    assert pending.statement == "ALTER TABLE accounts DROP COLUMN name"
    assert "was still waiting after 0.10 s" in str(pending)


def test_lines_with_a_harness_time_stamp_in_front_are_read_too():
    stamped = ["12:00:01.000 " + line for line in LOG]
    assert parse_lock_waits(stamped) == parse_lock_waits(LOG)


def test_nothing_in_a_log_without_lock_waits():
    assert parse_lock_waits([LOG[6], "not a log line at all"]) == []
