"""How a worker writes to storage: the worker calls save() for every value it produces.

The worker has already taken the lease from the lock service when it calls save(), and it hands
you that lease. `http` is an httpx.Client for storage (its base_url is storage's address): send
every request to storage through it.

A worker whose lease has run out must not write any more: save() checks the lease's expiry
before every write and refuses to write once it has passed.

Wrong: the worker checks its lease's expiry on its own clock before writing, but a pause right
after that check lets the write go out long after the lease was handed on; storage never judges.
Rejected by: test_1_no_stale_write_is_accepted, test_2_final_state_is_what_valid_holders_wrote,
    test_4_a_write_without_a_token_is_refused
"""

import time

import httpx
from services.lease import Lease

SAFETY_MARGIN = 0.1  # seconds: stop writing a little before the lease runs out


def save(http: httpx.Client, key: str, value: str, lease: Lease) -> bool:
    """Write `value` under `key` while the lease lasts; True when storage stored it."""
    if time.monotonic() >= lease.expires_at - SAFETY_MARGIN:
        return False  # the lease is gone: another worker may hold it now
    response = http.put(f"/kv/{key}", json={"value": value})
    return response.status_code == 200
