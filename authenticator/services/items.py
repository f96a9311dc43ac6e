"""Items: registration (``item.registered``) and the read model a buyer or page needs."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from authenticator.contracts.common import Appended
from authenticator.contracts.common import Receipt as ReceiptOut
from authenticator.contracts.items import Item, ItemCreated
from authenticator.db import read_tx
from authenticator.errors import NotFound, PermissionDenied
from authenticator.ledger.log import NewEntry, Receipt
from authenticator.services.badges import badge_for_item
from authenticator.services.commands import Command, execute
from authenticator.services.context import ServiceContext, fresh_receipt, receipt_of
from authenticator.store.idempotency import IdempotencyKey
from authenticator.store.keys import Principal, new_id
from authenticator.store.tables import items


def serial_commitment(serial_number: str, salt: bytes) -> str:
    """SHA-256(salt || serial): publishes nothing, yet proves the serial to whoever has the salt."""
    return hashlib.sha256(salt + serial_number.encode("utf-8")).hexdigest()


def register_item(
    ctx: ServiceContext,
    principal: Principal,
    category: str,
    brand: str,
    model: str,
    serial_number: str | None,
    *,
    key: str | None = None,
) -> tuple[int, ItemCreated | Appended]:
    """Append ``item.registered``; the serial number enters the log only as a salted commitment.

    Two identical registrations are two items unless they carry the same ``Idempotency-Key``
    (two bags of one model are not one bag): a client that may retry must send one.
    """
    item_id = new_id("itm")
    salt = secrets.token_bytes(16) if serial_number else None
    commitment = serial_commitment(serial_number, salt) if serial_number and salt else None
    body = {
        "category": category,
        "brand": brand,
        "model": model,
        "serial_commitment": commitment,
        "platform": principal.id,
    }

    def answer(receipts: list[Receipt]) -> ItemCreated:
        return _created(get_item(ctx, item_id), receipt_of(receipts[0]), salt.hex() if salt else None)

    fingerprint = "register|" + hashlib.sha256(
        "\0".join((category, brand, model, serial_number or "")).encode("utf-8")
    ).hexdigest()
    return execute(
        ctx,
        Command([NewEntry("item.registered", item_id, body)], item_id),
        answer,
        replay=lambda iid: _replayed_registration(ctx, iid),
        answer_type=ItemCreated,
        key=None if key is None else IdempotencyKey(principal.id, key, fingerprint),
    )


def _created(item: Item, receipt: ReceiptOut, serial_salt: str | None) -> ItemCreated:
    return ItemCreated(**dict(item), receipt=receipt, serial_salt=serial_salt)


def _replayed_registration(ctx: ServiceContext, item_id: str) -> ItemCreated:
    """A retry's answer when the first was not stored: the item and its entry (the salt is gone)."""
    return _created(get_item(ctx, item_id), fresh_receipt(ctx, item_row(ctx, item_id).registered_index), None)


@dataclass(frozen=True)
class ItemRecord:
    """An item as the projection holds it: what it is, who registered it, and its entry."""

    id: str
    platform: str
    category: str
    brand: str
    model: str
    serial_commitment: str | None
    registered_index: int
    registered_at: str


def item_row(ctx: ServiceContext, item_id: str) -> ItemRecord:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(items).where(items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"no item {item_id}", item_id=item_id)
    return ItemRecord(
        id=row.id,
        platform=row.platform,
        category=row.category,
        brand=row.brand,
        model=row.model,
        serial_commitment=row.serial_commitment,
        registered_index=int(row.registered_index),
        registered_at=row.registered_at,
    )


def require_own_item(ctx: ServiceContext, principal: Principal, item_id: str) -> ItemRecord:
    """The item, if ``principal`` is the platform that registered it."""
    row = item_row(ctx, item_id)
    if row.platform != principal.id:
        raise PermissionDenied("only the platform that registered this item may do this", item_id=item_id)
    return row


def get_item(ctx: ServiceContext, item_id: str) -> Item:
    """Public summary of an item: what it is, its current badge and where its trace is."""
    row = item_row(ctx, item_id)
    return Item(
        id=row.id,
        category=row.category,
        brand=row.brand,
        model=row.model,
        serial_commitment=row.serial_commitment,
        platform=row.platform,
        registered_at=row.registered_at,
        badge=badge_for_item(ctx, item_id),
        trace_url=f"/v1/items/{row.id}/trace",
    )
