"""How a record is sealed on disk: envelope encryption.

Each owner's records are sealed with the owner's data key: AES-256-GCM, a fresh random nonce
for every write, the record's id as associated data (a ciphertext moved to another record does
not open). The data key is stored only wrapped by the KMS, and kept unwrapped in memory for the
owners used lately, so that the KMS is not on the path of every request.

Wrong: nothing stops two first writes of a new owner from each making a data key: both wrap
one, and the second cannot be stored (the owner has its key already), so that write fails.
Rejected by: test_7_two_first_writes_of_a_new_owner_both_work
"""

import base64
import os
import sqlite3
from collections import OrderedDict

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEYS_IN_MEMORY = 64  # data keys kept unwrapped, the most recently used

kms = httpx.AsyncClient(base_url=os.environ["KMS_URL"], timeout=1.0)
unwrapped: OrderedDict[str, bytes] = OrderedDict()  # key id -> data key


class KeyServiceDown(Exception):
    """The KMS did not answer: nothing can be sealed with a key it has not wrapped."""


class Unreadable(Exception):
    """The record on disk is not what was written (tampered, or moved)."""


async def kms_call(path: str, body: dict[str, str]) -> dict[str, str]:
    try:
        answer = await kms.post(path, json=body)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise KeyServiceDown(f"the KMS failed ({type(exc).__name__})") from exc
    return answer.json()


def remember(key_id: str, key: bytes) -> bytes:
    unwrapped[key_id] = key
    unwrapped.move_to_end(key_id)
    while len(unwrapped) > KEYS_IN_MEMORY:
        unwrapped.popitem(last=False)
    return key


async def stored_key(db: sqlite3.Connection, key_id: str) -> bytes | None:
    if key_id in unwrapped:
        unwrapped.move_to_end(key_id)
        return unwrapped[key_id]
    row = db.execute("SELECT kek, wrapped_key FROM data_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        return None
    answer = await kms_call("/unwrap", {"kek": row[0], "wrapped": row[1]})
    return remember(key_id, base64.b64decode(answer["key"]))


async def owner_key(db: sqlite3.Connection, owner: str) -> tuple[str, bytes]:
    key = await stored_key(db, owner)
    if key is None:
        key = AESGCM.generate_key(bit_length=256)
        answer = await kms_call("/wrap", {"key": base64.b64encode(key).decode()})
        db.execute(
            "INSERT INTO data_keys (id, kek, wrapped_key) VALUES (?, ?, ?)",
            (owner, answer["kek"], answer["wrapped"]),
        )
        remember(owner, key)
    return owner, key


async def seal(
    db: sqlite3.Connection, owner: str, record_id: str, document: bytes
) -> tuple[str, bytes, bytes]:
    """(key id, nonce, ciphertext) of a record."""
    key_id, key = await owner_key(db, owner)
    nonce = os.urandom(12)
    return key_id, nonce, AESGCM(key).encrypt(nonce, document, record_id.encode())


async def open_sealed(
    db: sqlite3.Connection, record_id: str, key_id: str, nonce: bytes, ciphertext: bytes
) -> bytes:
    key = await stored_key(db, key_id)
    if key is None:
        raise Unreadable(f"no data key {key_id}")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, record_id.encode())
    except InvalidTag:
        raise Unreadable("the ciphertext does not verify") from None


async def rewrap_all(db: sqlite3.Connection) -> int:
    """Every data key wrapped by the KMS's current key. The data keys do not change, so the
    records stay as they are, and so does the service."""
    count = 0
    for key_id, kek, wrapped in db.execute("SELECT id, kek, wrapped_key FROM data_keys").fetchall():
        answer = await kms_call("/rewrap", {"kek": kek, "wrapped": wrapped})
        if answer["kek"] != kek:
            db.execute(
                "UPDATE data_keys SET kek = ?, wrapped_key = ? WHERE id = ?",
                (answer["kek"], answer["wrapped"], key_id),
            )
            count += 1
    return count
