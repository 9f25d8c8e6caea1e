"""The lease a worker holds while it writes, as the worker knows it. Owned by the lab."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    """A lease from the lock service.

    token: the lock's fencing token for this lease; every new grant has a higher one.
    expires_at: when the lease runs out, in time.monotonic() seconds of this worker's clock
        (the moment the lock answered, plus the lease's ttl).
    """

    token: int
    expires_at: float
