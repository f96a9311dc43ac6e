"""``Idempotency-Key`` records: a retry gets the first answer, and no second log entry.

The first request inserts a pending row (the primary key makes concurrent twins collide), runs,
then stores its answer. A twin that arrives while the first still runs gets 409; a key reused
with a different request body gets 409 as well, never the other request's answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from authenticator.errors import IdempotencyConflict, InvalidInput
from authenticator.store.db import utc_now, write_tx
from authenticator.store.tables import idempotency

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str


def begin(engine: Engine, principal_id: str, key: str, fingerprint: str) -> StoredResponse | None:
    """The stored answer for a retry, or ``None`` after claiming the key for a first run."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    with write_tx(engine, lock="idempotency") as conn:
        row = conn.execute(
            select(idempotency.c.fingerprint, idempotency.c.status_code, idempotency.c.response).where(
                idempotency.c.principal_id == principal_id, idempotency.c.key == key
            )
        ).first()
        if row is None:
            conn.execute(
                insert(idempotency).values(
                    principal_id=principal_id, key=key, fingerprint=fingerprint, created_at=utc_now()
                )
            )
            return None
    if row.fingerprint != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
    if row.response is None or row.status_code is None:
        raise IdempotencyConflict("a request with this Idempotency-Key is still running; retry later")
    return StoredResponse(status_code=int(row.status_code), body=str(row.response))


def complete(engine: Engine, principal_id: str, key: str, status_code: int, body: str) -> None:
    with write_tx(engine) as conn:
        conn.execute(
            update(idempotency)
            .where(idempotency.c.principal_id == principal_id, idempotency.c.key == key)
            .values(status_code=status_code, response=body)
        )


def abandon(engine: Engine, principal_id: str, key: str) -> None:
    """Forget a claim whose request failed, so the client may retry it."""
    with write_tx(engine) as conn:
        conn.execute(
            delete(idempotency).where(
                idempotency.c.principal_id == principal_id,
                idempotency.c.key == key,
                idempotency.c.response.is_(None),
            )
        )
