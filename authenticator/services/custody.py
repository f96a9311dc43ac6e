"""Custody transfers of the consignment flow (``custody.transferred``)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select

from authenticator.ledger.log import NewEntry
from authenticator.services.context import ServiceContext, receipt_json
from authenticator.services.items import require_own_item
from authenticator.store.db import read_tx
from authenticator.store.keys import Principal
from authenticator.store.tables import custody

EVENTS = ("received_for_consignment", "bought_back", "consigned", "sold")


def record_transfer(
    ctx: ServiceContext, principal: Principal, item_id: str, event: str, counterparty: str | None
) -> dict[str, Any]:
    """Append a transfer; the counterparty (personal data) enters only as a salted commitment."""
    require_own_item(ctx, principal, item_id)
    salt = secrets.token_bytes(16) if counterparty else None
    commitment = hashlib.sha256(salt + counterparty.encode("utf-8")).hexdigest() if counterparty and salt else None
    body = {"event": event, "platform": principal.id, "counterparty_commitment": commitment}
    [receipt] = ctx.append([NewEntry("custody.transferred", item_id, body)])
    return {
        "item_id": item_id,
        "event": event,
        "counterparty_commitment": commitment,
        "counterparty_salt": salt.hex() if salt else None,
        "receipt": receipt_json(receipt, ctx.ledger.entry(receipt.index).data),
    }


def custody_history(ctx: ServiceContext, item_id: str) -> list[dict[str, Any]]:
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(custody).where(custody.c.item_id == item_id).order_by(custody.c.entry_index)).all()
    return [
        {"index": r.entry_index, "event": r.event, "platform": r.platform, "recorded_at": r.recorded_at} for r in rows
    ]
