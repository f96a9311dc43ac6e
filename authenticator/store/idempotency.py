"""``Idempotency-Key`` records: a retry gets the first answer, and no second log entry.

The record of a key is written **in the transaction that appends the command's entry** (under
the log's writer lock), so there is no window in which two twins can both append: the second
finds the first's record and is answered with the first's answer. A key reused with a different
request body gets 409, never the other request's answer. A request that fails appends nothing
and records nothing, so the client may simply retry it. The answer itself is stored just after
the commit; a record without one (the process died in between) is answered from the log.

Registrations (``POST /v1/keys``, ``POST /v1/labs``) append nothing to the log: their record and
their answer are written in the registration's own transaction. Their answer holds a new API key,
which the database otherwise keeps only as a SHA-256, so it is stored **sealed**
(:func:`record_sealed_in`): AES-256-GCM under a key derived (HKDF-SHA256) from the API key of
the caller that asked, which the database never holds. A retry presenting that same API key gets
the first answer back for :data:`SEALED_REPLAY_S`; a copy of the database alone opens nothing,
and every registration erases the sealed answers past that time.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, insert, select, update

from authenticator.db import read_tx, utc_now, write_tx
from authenticator.errors import IdempotencyConflict, InvalidInput
from authenticator.store.tables import idempotency, principals

MAX_KEY_LENGTH = 200
SEALED_PREFIX = "sealed:v1:"
"""How a sealed answer starts in ``app_idempotency.response`` (base64 of nonce and ciphertext follow)."""
SEALED_REPLAY_S = 24 * 3600
"""How long a retry can get a sealed answer (one holding a new API key) back."""


@dataclass(frozen=True)
class IdempotencyKey:
    """Who sent which key for which request (``fingerprint``: a digest of what was asked)."""

    principal_id: str
    key: str
    fingerprint: str

    def __post_init__(self) -> None:
        key = self.key
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")


@dataclass(frozen=True)
class Recorded:
    """A key already used for this request: the resource it made and, normally, the answer."""

    resource_id: str
    status_code: int | None
    body: str | None
    created_at: str | None = None


def _where(k: IdempotencyKey) -> ColumnElement[bool]:
    return and_(idempotency.c.principal_id == k.principal_id, idempotency.c.key == k.key)


def lookup_in(conn: Connection, k: IdempotencyKey) -> Recorded | None:
    """The record of ``k`` read on ``conn``; :class:`IdempotencyConflict` for another request."""
    row = conn.execute(
        select(
            idempotency.c.fingerprint,
            idempotency.c.resource_id,
            idempotency.c.status_code,
            idempotency.c.response,
            idempotency.c.created_at,
        ).where(_where(k))
    ).first()
    if row is None:
        return None
    if row.fingerprint != k.fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
    status = None if row.status_code is None else int(row.status_code)
    return Recorded(str(row.resource_id), status, row.response, row.created_at)


def lookup(engine: Engine, k: IdempotencyKey) -> Recorded | None:
    """:func:`lookup_in` on a connection of its own (the cheap check before any work)."""
    with read_tx(engine) as conn:
        return lookup_in(conn, k)


def record_in(
    conn: Connection,
    k: IdempotencyKey,
    resource_id: str,
    *,
    status_code: int | None = None,
    response: str | None = None,
) -> None:
    """Record the key in the append's transaction (a record left by a run of an older version
    that died before appending is replaced); the answer now when it is known already."""
    conn.execute(delete(idempotency).where(_where(k)))
    conn.execute(
        insert(idempotency).values(
            principal_id=k.principal_id,
            key=k.key,
            fingerprint=k.fingerprint,
            resource_id=resource_id,
            status_code=status_code,
            response=response,
            created_at=utc_now(),
        )
    )


def complete(engine: Engine, k: IdempotencyKey, status_code: int, body: str) -> None:
    """Store the answer given, for retries to get it byte for byte."""
    with write_tx(engine) as conn:
        conn.execute(update(idempotency).where(_where(k)).values(status_code=status_code, response=body))


# --- Sealed answers (registrations: the answer holds a new API key) ---------------------------


def _sealing_key(caller_key: str, k: IdempotencyKey) -> bytes:
    """The AES-256 key of ``k``'s answer: HKDF-SHA256 of the API key the caller presented (the
    database holds only its SHA-256, from which this cannot be derived), bound to caller and key."""
    info = b"\0".join((b"authenticator sealed answer v1", k.principal_id.encode("ascii"), k.key.encode("ascii")))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(caller_key.strip().encode("utf-8"))


def _replay_cutoff() -> str:
    """``created_at`` of the oldest record whose sealed answer may still be given (same format)."""
    return (datetime.now(UTC) - timedelta(seconds=SEALED_REPLAY_S)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def erase_expired_sealed_in(conn: Connection) -> None:
    """Forget sealed answers past :data:`SEALED_REPLAY_S` (run by every registration; only admins
    register, and the principal is the first column of the key, so this reads few rows)."""
    expired = and_(
        idempotency.c.principal_id.in_(select(principals.c.id).where(principals.c.role == "admin")),
        idempotency.c.response.like(SEALED_PREFIX + "%"),
        idempotency.c.created_at < _replay_cutoff(),
    )
    conn.execute(update(idempotency).where(expired).values(response=None, status_code=None))


def record_sealed_in(
    conn: Connection, k: IdempotencyKey, resource_id: str, status_code: int, body: str, caller_key: str
) -> None:
    """Record ``k`` with its answer ``body`` sealed under ``caller_key`` (the API key of the caller,
    as presented), in the registration's transaction."""
    nonce = os.urandom(12)
    sealed = AESGCM(_sealing_key(caller_key, k)).encrypt(nonce, body.encode("utf-8"), k.fingerprint.encode("utf-8"))
    response = SEALED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")
    record_in(conn, k, resource_id, status_code=status_code, response=response)


def open_sealed(k: IdempotencyKey, recorded: Recorded, caller_key: str) -> str | None:
    """The first answer of a sealed record; None when it cannot be given again: past
    :data:`SEALED_REPLAY_S` (or erased), or asked with another API key than the one that asked first."""
    body = recorded.body
    if body is None or not body.startswith(SEALED_PREFIX):
        return None
    if recorded.created_at is None or recorded.created_at < _replay_cutoff():
        return None
    try:
        raw = base64.b64decode(body[len(SEALED_PREFIX) :], validate=True)
        plain = AESGCM(_sealing_key(caller_key, k)).decrypt(raw[:12], raw[12:], k.fingerprint.encode("utf-8"))
    except (InvalidTag, binascii.Error, ValueError):
        return None
    return plain.decode("utf-8")
