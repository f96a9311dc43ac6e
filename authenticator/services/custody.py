"""Custody transfers of the consignment flow (``custody.transferred``)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, select

from authenticator.contracts.common import Appended
from authenticator.contracts.listings import CustodyRecorded
from authenticator.db import read_tx
from authenticator.errors import Conflict, NotFound
from authenticator.ledger.log import NewEntry, Receipt
from authenticator.services.commands import Command, execute
from authenticator.services.context import ServiceContext, fresh_receipt, receipt_of
from authenticator.services.items import require_own_item
from authenticator.store.idempotency import IdempotencyKey
from authenticator.store.keys import Principal
from authenticator.store.tables import custody

EVENTS = ("received_for_consignment", "bought_back", "consigned", "sold")


def record_transfer(
    ctx: ServiceContext,
    principal: Principal,
    item_id: str,
    event: str,
    counterparty: str | None,
    *,
    key: str | None = None,
) -> tuple[int, CustodyRecorded | Appended]:
    """Append a transfer; the counterparty (personal data) enters only as a salted commitment.

    The same event twice in a row (``sold`` then ``sold``) is a doubled request, not a history:
    it gets 409.
    """
    require_own_item(ctx, principal, item_id)
    salt = secrets.token_bytes(16) if counterparty else None
    commitment = hashlib.sha256(salt + counterparty.encode("utf-8")).hexdigest() if counterparty and salt else None
    body = {"event": event, "platform": principal.id, "counterparty_commitment": commitment}

    def not_a_repeat(conn: Connection) -> None:
        latest = conn.execute(
            select(custody.c.event).where(custody.c.item_id == item_id).order_by(custody.c.entry_index.desc()).limit(1)
        ).scalar()
        if latest == event:
            raise Conflict(f"the item's latest custody event is already {event}", item_id=item_id, event=event)

    def answer(receipts: list[Receipt]) -> CustodyRecorded:
        return CustodyRecorded(
            item_id=item_id,
            event=event,
            counterparty_commitment=commitment,
            counterparty_salt=salt.hex() if salt else None,
            receipt=receipt_of(receipts[0]),
        )

    fingerprint = f"custody|{item_id}|{event}|{hashlib.sha256((counterparty or '').encode('utf-8')).hexdigest()}"
    return execute(
        ctx,
        Command([NewEntry("custody.transferred", item_id, body)], item_id, check=not_a_repeat),
        answer,
        replay=lambda _item: _latest_transfer(ctx, item_id),
        answer_type=CustodyRecorded,
        key=None if key is None else IdempotencyKey(principal.id, key, fingerprint),
    )


def _latest_transfer(ctx: ServiceContext, item_id: str) -> CustodyRecorded:
    """A retry's answer when the first was not stored: the item's latest transfer (no salt)."""
    with read_tx(ctx.engine) as conn:
        row = conn.execute(
            select(custody).where(custody.c.item_id == item_id).order_by(custody.c.entry_index.desc()).limit(1)
        ).first()
    if row is None:
        raise NotFound(f"no custody transfer of {item_id}")
    return CustodyRecorded(
        item_id=item_id,
        event=row.event,
        counterparty_commitment=row.counterparty_commitment,
        counterparty_salt=None,
        receipt=fresh_receipt(ctx, int(row.entry_index)),
    )
