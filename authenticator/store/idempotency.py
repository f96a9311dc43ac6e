"""``Idempotency-Key`` records: a retry gets the first answer, and no second log entry.

The first request claims the key with a pending row that already names the id of the
resource it will create (the primary key makes concurrent twins collide), runs, then stores
its answer. A twin that arrives while the first still runs gets 409; a key reused with a
different request body gets 409 as well, never the other request's answer. A claim left
pending by a process that died is taken over after :data:`PENDING_TIMEOUT_S`, with the same
resource id, so the caller can first look in the log for what the dead run may have appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from authenticator.errors import IdempotencyConflict, InvalidInput
from authenticator.store.db import utc_now, write_tx
from authenticator.store.tables import idempotency

MAX_KEY_LENGTH = 200
PENDING_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class StoredResponse:
    """The answer of the first run, to replay."""

    status_code: int
    body: str


@dataclass(frozen=True)
class Claim:
    """Go ahead: create the resource under ``resource_id``; ``taken_over`` when a dead run
    claimed it first (it may have appended already: look it up before appending again)."""

    resource_id: str
    taken_over: bool = False


def _stale(created_at: str) -> bool:
    try:
        when = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return datetime.now(UTC) - when > timedelta(seconds=PENDING_TIMEOUT_S)


def begin(engine: Engine, principal_id: str, key: str, fingerprint: str, resource_id: str) -> StoredResponse | Claim:
    """The stored answer for a retry, or a :class:`Claim` to run the request."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    where = (idempotency.c.principal_id == principal_id, idempotency.c.key == key)
    with write_tx(engine, lock="idempotency") as conn:
        row = conn.execute(
            select(
                idempotency.c.fingerprint,
                idempotency.c.resource_id,
                idempotency.c.status_code,
                idempotency.c.response,
                idempotency.c.created_at,
            ).where(*where)
        ).first()
        if row is None:
            conn.execute(
                insert(idempotency).values(
                    principal_id=principal_id,
                    key=key,
                    fingerprint=fingerprint,
                    resource_id=resource_id,
                    created_at=utc_now(),
                )
            )
            return Claim(resource_id)
        if row.fingerprint != fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
        if row.response is not None and row.status_code is not None:
            return StoredResponse(status_code=int(row.status_code), body=str(row.response))
        if not _stale(row.created_at):
            raise IdempotencyConflict("a request with this Idempotency-Key is still running; retry later")
        conn.execute(update(idempotency).where(*where).values(created_at=utc_now()))
        return Claim(str(row.resource_id), taken_over=True)


def complete(engine: Engine, principal_id: str, key: str, status_code: int, body: str) -> None:
    with write_tx(engine) as conn:
        conn.execute(
            update(idempotency)
            .where(idempotency.c.principal_id == principal_id, idempotency.c.key == key)
            .values(status_code=status_code, response=body)
        )


def abandon(engine: Engine, principal_id: str, key: str) -> None:
    """Forget a claim whose request failed before appending, so the client may retry it."""
    with write_tx(engine) as conn:
        conn.execute(
            delete(idempotency).where(
                idempotency.c.principal_id == principal_id,
                idempotency.c.key == key,
                idempotency.c.response.is_(None),
            )
        )
