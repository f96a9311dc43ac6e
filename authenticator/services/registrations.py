"""Registrations that answer a new API key (``POST /v1/keys``, ``POST /v1/labs``), each made once.

They append nothing to the log, so they do not go through :mod:`authenticator.services.commands`;
they follow its rule all the same: the ``Idempotency-Key`` lookup, the natural-key check (a lab's
public key), the rows (principal, lab, key) and the key's record with its answer run in **one
transaction**, serialised across workers and servers (SQLite ``BEGIN IMMEDIATE``, PostgreSQL's
advisory lock ``registrations``). A retry with the same key and request gets the first answer,
its API key included: the answer is stored sealed under the caller's own API key
(:func:`authenticator.store.idempotency.record_sealed_in`), so only that key opens it again, and
only for :data:`~authenticator.store.idempotency.SEALED_REPLAY_S`; after that, or from another
key of the same admin, the retry gets 409 naming what was created (and its key id, to rotate).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection

from authenticator.contracts.admin import KeyCreated
from authenticator.db import write_tx
from authenticator.errors import IdempotencyConflict, IntegrityError
from authenticator.services.context import ServiceContext
from authenticator.store import idempotency
from authenticator.store.idempotency import IdempotencyKey, Recorded
from authenticator.store.keys import Principal, first_key_id, insert_principal, issue_key_in

A = TypeVar("A", bound=BaseModel)
LOCK = "registrations"
"""The PostgreSQL advisory lock every registration holds (SQLite serialises writers anyway)."""


@dataclass(frozen=True)
class Caller:
    """Who registers: the authenticated admin and the API key it presented (which seals the answer)."""

    principal: Principal
    api_key: str = field(repr=False)


def fingerprint(kind: str, *fields: str) -> str:
    """What a registration asked, for its ``Idempotency-Key`` (another body with one key is 409)."""
    return f"{kind}|" + hashlib.sha256("\0".join(fields).encode("utf-8")).hexdigest()


def register_once(
    ctx: ServiceContext,
    caller: Caller,
    idempotency_key: str | None,
    request: str,
    answer_type: type[A],
    create: Callable[[Connection], tuple[str, A]],
    *,
    id_name: str,
) -> A:
    """Run ``create`` (which checks its natural keys and inserts, returning the new id and the
    answer) once per ``Idempotency-Key``; a retry gets the first answer (see the module)."""
    k = None if idempotency_key is None else IdempotencyKey(caller.principal.id, idempotency_key, request)
    for attempt in (1, 2):
        try:
            with write_tx(ctx.engine, lock=LOCK) as conn:
                if k is not None:
                    first = idempotency.lookup_in(conn, k)  # IdempotencyConflict for another request
                    if first is not None:
                        return _replayed(conn, k, first, caller, answer_type, id_name)
                resource_id, answer = create(conn)
                idempotency.erase_expired_sealed_in(conn)
                if k is not None:
                    idempotency.record_sealed_in(conn, k, resource_id, 201, answer.model_dump_json(), caller.api_key)
                return answer
        except IntegrityError:
            # A unique index refused a twin that did not hold the lock (an older version's process,
            # or the same Idempotency-Key on another endpoint): the next try sees what it wrote.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _replayed(
    conn: Connection, k: IdempotencyKey, first: Recorded, caller: Caller, answer_type: type[A], id_name: str
) -> A:
    body = idempotency.open_sealed(k, first, caller.api_key)
    if body is not None:
        return answer_type.model_validate_json(body)
    key_id = first_key_id(conn, first.resource_id)
    raise IdempotencyConflict(
        f"already created: {first.resource_id} (API key {key_id}); its API key is answered again only to the "
        f"API key that asked, for {idempotency.SEALED_REPLAY_S // 3600} hours; "
        f"`authenticator keys rotate {key_id}` issues a new one",
        **{id_name: first.resource_id, "key_id": key_id},
    )


def create_key(ctx: ServiceContext, caller: Caller, role: str, name: str, *, key: str | None = None) -> KeyCreated:
    """A new principal of ``role`` and its first API key (``POST /v1/keys``), once per ``key``.

    Without an ``Idempotency-Key`` two requests are two principals (two platforms may share a
    name): a client that may retry must send one."""

    def create(conn: Connection) -> tuple[str, KeyCreated]:
        issued = issue_key_in(conn, insert_principal(conn, role, name))
        answer = KeyCreated(
            principal_id=issued.principal_id, role=issued.role, key_id=issued.key_id, api_key=issued.api_key
        )
        return issued.principal_id, answer

    request = fingerprint("keys.create", role, name)
    return register_once(ctx, caller, key, request, KeyCreated, create, id_name="principal_id")
