"""Every state-changing command runs here, exactly once.

A command is the entries it appends plus the precondition that makes it legal (``check``) and
what the tables must remember with it (``after``). Both run in the append's transaction under
the log's single-writer lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock), so N
identical requests, from any number of workers or servers on one database, are serialised: the
first appends, the others find its trace (a certificate already attached, a listing already
closed, an ``Idempotency-Key`` already recorded) and append nothing. The projections move in
the same transaction (``ServiceContext.append``), so a request that appended can only fail
before the commit, and then nothing was appended.

After the commit nothing may turn an appended request into an error: the answer is built from
fresh reads, and if those fail the client still gets 201 with its receipt (:class:`Appended`).
Answers are typed (a contract model, ``A``): the first is stored as its JSON and a twin gets it
back parsed as the same model, so both are serialised alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from authenticator.contracts.common import Appended
from authenticator.errors import AuthenticatorError, IdempotencyConflict, NotFound
from authenticator.ledger.log import AfterAppend, Check, NewEntry, Receipt, StoredEntry
from authenticator.services.context import ServiceContext, receipt_of
from authenticator.store import idempotency
from authenticator.store.idempotency import IdempotencyKey, Recorded

log = logging.getLogger("authenticator.commands")

A = TypeVar("A", bound=BaseModel)
"""The contract a command answers (``Item``, ``Listing``...)."""
ANSWER_WAIT_S = 5.0
"""How long a twin waits for the first request's stored answer before answering from the log."""


@dataclass(frozen=True)
class Command:
    """What one request asks the log to do."""

    entries: Sequence[NewEntry]
    resource_id: str
    """The id of what the command makes or changes (answered again to a retry)."""
    check: Check | None = None
    after: AfterAppend | None = None


class _Replay(Exception):
    """Raised under the lock when the key was recorded meanwhile: roll back, answer the first."""

    def __init__(self, recorded: Recorded) -> None:
        super().__init__("replay")
        self.recorded = recorded


def execute(
    ctx: ServiceContext,
    command: Command,
    respond: Callable[[list[Receipt]], A],
    *,
    replay: Callable[[str], A],
    answer_type: type[A],
    key: IdempotencyKey | None = None,
    status: int = 201,
) -> tuple[int, A | Appended]:
    """Append ``command`` once; ``(status, answer)``. ``replay(resource_id)`` answers a retry
    whose first answer was not stored; ``answer_type`` parses a stored first answer."""
    early = replay_if_recorded(ctx, key, replay, answer_type)
    if early is not None:
        return early

    def check(conn: Connection) -> None:
        if key is not None:
            recorded = idempotency.lookup_in(conn, key)
            if recorded is not None:
                raise _Replay(recorded)
        if command.check is not None:
            command.check(conn)

    def after(conn: Connection, stored: list[StoredEntry]) -> None:
        if command.after is not None:
            command.after(conn, stored)
        if key is not None:
            idempotency.record_in(conn, key, command.resource_id)

    needs_check = key is not None or command.check is not None
    try:
        receipts = ctx.append(command.entries, check=check if needs_check else None, after=after)
    except _Replay as r:
        assert key is not None
        return _replayed(ctx, key, r.recorded, replay, answer_type)
    answer: A | Appended
    try:
        answer = respond(receipts)
    except AuthenticatorError as exc:  # appended: the client must hear so, whatever the reads say
        log.warning("entry %d appended, but its answer could not be built: %s", receipts[0].index, exc.message)
        answer = Appended(id=command.resource_id, receipt=receipt_of(receipts[0]))
    if key is not None:
        try:
            idempotency.complete(ctx.engine, key, status, answer.model_dump_json())
        except AuthenticatorError as exc:  # a retry is then answered from the log
            log.warning("could not store the answer for an Idempotency-Key: %s", exc.message)
    return status, answer


def replay_if_recorded(
    ctx: ServiceContext,
    key: IdempotencyKey | None,
    replay: Callable[[str], A],
    answer_type: type[A],
) -> tuple[int, A | Appended] | None:
    """The first answer when ``key`` was already used for this request (checked before costly
    work such as inference; :func:`execute` checks again under the lock)."""
    if key is None:
        return None
    first = idempotency.lookup(ctx.engine, key)
    return None if first is None else _replayed(ctx, key, first, replay, answer_type)


def _parsed(body: str, answer_type: type[A]) -> A | Appended:
    """A stored first answer as its contract: the command's own, or :class:`Appended` when the
    first request could only answer its receipt."""
    try:
        return answer_type.model_validate_json(body)
    except ValidationError:
        return Appended.model_validate_json(body)


def _replayed(
    ctx: ServiceContext,
    key: IdempotencyKey,
    recorded: Recorded,
    replay: Callable[[str], A],
    answer_type: type[A],
) -> tuple[int, A | Appended]:
    deadline = time.monotonic() + ANSWER_WAIT_S
    while recorded.body is None and time.monotonic() < deadline:  # a twin: the first is answering now
        time.sleep(0.02)
        recorded = idempotency.lookup(ctx.engine, key) or recorded
    if recorded.body is not None and recorded.status_code is not None:
        return recorded.status_code, _parsed(recorded.body, answer_type)
    try:
        return 201, replay(recorded.resource_id)
    except NotFound as exc:  # a claim an older version left behind for a run that never appended
        raise IdempotencyConflict("an earlier request with this Idempotency-Key did not finish; use a new key") from exc
