"""How a record is sealed on disk.

Also correct: written differently from the reference. ChaCha20-Poly1305 instead of AES-GCM,
with the owner and the record's id as associated data; the data keys in memory are a plain
dict bounded by evicting the oldest entry; a new owner's key is made once through a shared
future (no lock); the rewrap sends every data key to the KMS at once (asyncio.gather).
"""

import asyncio
import base64
import os
import sqlite3

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

MAX_KEYS = 32

kms = httpx.AsyncClient(base_url=os.environ["KMS_URL"], timeout=0.8)
keys: dict[str, bytes] = {}
making: dict[str, asyncio.Future[bytes]] = {}


class KeyServiceDown(Exception):
    pass


class Unreadable(Exception):
    pass


async def ask(path: str, **body: str) -> dict[str, str]:
    try:
        answer = await kms.post(path, json=body)
    except httpx.HTTPError as exc:
        raise KeyServiceDown(f"KMS unreachable: {exc!r}") from exc
    if answer.status_code != 200:
        raise KeyServiceDown(f"KMS answered {answer.status_code} to {path}")
    return answer.json()


def keep(key_id: str, key: bytes) -> bytes:
    keys.pop(key_id, None)
    keys[key_id] = key  # dicts keep insertion order: the first entry is the oldest
    if len(keys) > MAX_KEYS:
        del keys[next(iter(keys))]
    return key


async def load(db: sqlite3.Connection, key_id: str) -> bytes | None:
    if key_id in keys:
        return keep(key_id, keys[key_id])
    row = db.execute("SELECT kek, wrapped_key FROM data_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        return None
    answer = await ask("/unwrap", kek=row[0], wrapped=row[1])
    return keep(key_id, base64.b64decode(answer["key"]))


async def make(db: sqlite3.Connection, owner: str) -> bytes:
    key = ChaCha20Poly1305.generate_key()
    answer = await ask("/wrap", key=base64.b64encode(key).decode())
    db.execute(
        "INSERT INTO data_keys (id, kek, wrapped_key) VALUES (?, ?, ?)",
        (owner, answer["kek"], answer["wrapped"]),
    )
    return keep(owner, key)


async def seal(
    db: sqlite3.Connection, owner: str, record_id: str, document: bytes
) -> tuple[str, bytes, bytes]:
    key = await load(db, owner)
    if key is None:
        if owner not in making:
            making[owner] = asyncio.ensure_future(make(db, owner))
            making[owner].add_done_callback(lambda _: making.pop(owner, None))
        key = await asyncio.shield(making[owner])
    nonce = os.urandom(12)
    aad = f"{owner}/{record_id}".encode()
    return owner, nonce, ChaCha20Poly1305(key).encrypt(nonce, document, aad)


async def open_sealed(
    db: sqlite3.Connection, record_id: str, key_id: str, nonce: bytes, ciphertext: bytes
) -> bytes:
    key = await load(db, key_id)
    if key is None:
        raise Unreadable(f"data key {key_id} is missing")
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, f"{key_id}/{record_id}".encode())
    except InvalidTag:
        raise Unreadable("authentication failed") from None


async def rewrap_all(db: sqlite3.Connection) -> int:
    rows = db.execute("SELECT id, kek, wrapped_key FROM data_keys").fetchall()
    answers = await asyncio.gather(*(ask("/rewrap", kek=k, wrapped=w) for _, k, w in rows))
    for (key_id, _, _), answer in zip(rows, answers, strict=True):
        db.execute(
            "UPDATE data_keys SET kek = ?, wrapped_key = ? WHERE id = ?",
            (answer["kek"], answer["wrapped"], key_id),
        )
    return len(rows)
