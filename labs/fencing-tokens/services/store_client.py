"""How a worker writes to storage: the worker calls save() for every value it produces.

The worker has already taken the lease from the lock service when it calls save(), and it hands
you that lease. `http` is an httpx.Client for storage (its base_url is storage's address): send
every request to storage through it.
"""

import httpx

from services.lease import Lease


def save(http: httpx.Client, key: str, value: str, lease: Lease) -> bool:
    """Write `value` under `key`; True when storage stored it."""
    response = http.put(f"/kv/{key}", json={"value": value})
    return response.status_code == 200
