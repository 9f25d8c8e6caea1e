"""How a worker writes to storage: the worker calls save() for every value it produces.

The worker has already taken the lease from the lock service when it calls save(), and it hands
you that lease. `http` is an httpx.Client for storage (its base_url is storage's address): send
every request to storage through it.

Every write carries the lease's fencing token, so that storage can refuse a writer whose lease
was given to someone else while it was not looking.
"""

import httpx
from services.lease import Lease


def save(http: httpx.Client, key: str, value: str, lease: Lease) -> bool:
    """Write `value` under `key`; True when storage stored it, False when it fenced us off."""
    response = http.put(
        f"/kv/{key}", json={"value": value}, headers={"Fencing-Token": str(lease.token)}
    )
    return response.status_code == 200
