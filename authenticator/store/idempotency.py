"""``Idempotency-Key`` records: a retry gets the first answer, and no second log entry.

The record of a key is written **in the transaction that appends the command's entry** (under
the log's writer lock), so there is no window in which two twins can both append: the second
finds the first's record and is answered with the first's answer. A key reused with a different
request body gets 409, never the other request's answer. A request that fails appends nothing
and records nothing, so the client may simply retry it. The answer itself is stored just after
the commit; a record without one (the process died in between) is answered from the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, insert, select, update

from authenticator.db import read_tx, utc_now, write_tx
from authenticator.errors import IdempotencyConflict, InvalidInput
from authenticator.store.tables import idempotency

MAX_KEY_LENGTH = 200


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


def _where(k: IdempotencyKey) -> ColumnElement[bool]:
    return and_(idempotency.c.principal_id == k.principal_id, idempotency.c.key == k.key)


def lookup_in(conn: Connection, k: IdempotencyKey) -> Recorded | None:
    """The record of ``k`` read on ``conn``; :class:`IdempotencyConflict` for another request."""
    row = conn.execute(
        select(
            idempotency.c.fingerprint, idempotency.c.resource_id, idempotency.c.status_code, idempotency.c.response
        ).where(_where(k))
    ).first()
    if row is None:
        return None
    if row.fingerprint != k.fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
    return Recorded(str(row.resource_id), None if row.status_code is None else int(row.status_code), row.response)


def lookup(engine: Engine, k: IdempotencyKey) -> Recorded | None:
    """:func:`lookup_in` on a connection of its own (the cheap check before any work)."""
    with read_tx(engine) as conn:
        return lookup_in(conn, k)


def record_in(conn: Connection, k: IdempotencyKey, resource_id: str) -> None:
    """Record the key in the append's transaction (a record left by a run of an older version
    that died before appending is replaced)."""
    conn.execute(delete(idempotency).where(_where(k)))
    conn.execute(
        insert(idempotency).values(
            principal_id=k.principal_id,
            key=k.key,
            fingerprint=k.fingerprint,
            resource_id=resource_id,
            created_at=utc_now(),
        )
    )


def complete(engine: Engine, k: IdempotencyKey, status_code: int, body: str) -> None:
    """Store the answer given, for retries to get it byte for byte."""
    with write_tx(engine) as conn:
        conn.execute(update(idempotency).where(_where(k)).values(status_code=status_code, response=body))
