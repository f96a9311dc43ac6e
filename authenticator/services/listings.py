"""Listings: published and closed in the log; read with a badge and the entries behind it."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, Row, select

from authenticator.contracts.common import Appended, Receipt
from authenticator.contracts.listings import Listing
from authenticator.db import read_tx
from authenticator.errors import Conflict, NotFound, PermissionDenied
from authenticator.ledger.log import NewEntry
from authenticator.services.badges import badge_out, derive_badge, item_facts
from authenticator.services.commands import Command, execute
from authenticator.services.context import ServiceContext, fresh_receipt, receipt_of
from authenticator.services.items import require_own_item
from authenticator.services.traces import evidence
from authenticator.store.idempotency import IdempotencyKey
from authenticator.store.keys import Principal, new_id
from authenticator.store.tables import listings


def publish_listing(
    ctx: ServiceContext,
    principal: Principal,
    item_id: str,
    title: str,
    price: str,
    currency: str,
    *,
    key: str | None = None,
) -> tuple[int, Listing | Appended]:
    """Append ``listing.published``; the title lives in the blob store, its hash in the log.

    An item has at most one open listing: a second publish while one is open gets 409 naming it
    (so a retried or doubled request cannot list the item twice).
    """
    require_own_item(ctx, principal, item_id)
    listing_id = new_id("lst")
    title_sha256 = ctx.blobs.put(title.encode("utf-8"))
    body = {
        "listing_id": listing_id,
        "platform": principal.id,
        "title_sha256": title_sha256,
        "price": price,
        "currency": currency,
    }

    def no_open_listing(conn: Connection) -> None:
        open_id = conn.execute(
            select(listings.c.id).where(listings.c.item_id == item_id, listings.c.closed_index.is_(None)).limit(1)
        ).scalar()
        if open_id is not None:
            raise Conflict("this item already has an open listing; close it first", listing_id=str(open_id))

    fingerprint = f"publish|{item_id}|{title_sha256}|{price}|{currency}"
    return execute(
        ctx,
        Command([NewEntry("listing.published", item_id, body)], listing_id, check=no_open_listing),
        lambda receipts: _with_receipt(get_listing(ctx, listing_id), receipt_of(receipts[0])),
        replay=lambda lid: _replayed(ctx, lid, closed=False),
        answer_type=Listing,
        key=None if key is None else IdempotencyKey(principal.id, key, fingerprint),
    )


def close_listing(
    ctx: ServiceContext, principal: Principal, listing_id: str, reason: str, *, key: str | None = None
) -> tuple[int, Listing | Appended]:
    """Append ``listing.closed``; only the publishing platform may, and only once."""
    row = _listing_row(ctx, listing_id)
    if row.platform != principal.id:
        raise PermissionDenied("only the platform that published a listing may close it")
    body = {"listing_id": listing_id, "reason": reason}

    def still_open(conn: Connection) -> None:
        closed = conn.execute(select(listings.c.closed_index).where(listings.c.id == listing_id)).scalar()
        if closed is not None:
            raise Conflict("this listing is already closed", listing_id=listing_id)

    fingerprint = f"close|{listing_id}|{hashlib.sha256(reason.encode('utf-8')).hexdigest()}"
    return execute(
        ctx,
        Command([NewEntry("listing.closed", row.item_id, body)], listing_id, check=still_open),
        lambda receipts: _with_receipt(get_listing(ctx, listing_id), receipt_of(receipts[0])),
        replay=lambda lid: _replayed(ctx, lid, closed=True),
        answer_type=Listing,
        key=None if key is None else IdempotencyKey(principal.id, key, fingerprint),
        status=200,
    )


def _replayed(ctx: ServiceContext, listing_id: str, *, closed: bool) -> Listing:
    """A retry's answer when the first was not stored: the listing and a fresh receipt."""
    row = _listing_row(ctx, listing_id)
    index = row.closed_index if closed else row.published_index
    if index is None:
        raise NotFound(f"listing {listing_id} was not closed")
    return _with_receipt(get_listing(ctx, listing_id), fresh_receipt(ctx, int(index)))


def _with_receipt(listing: Listing, receipt: Receipt) -> Listing:
    return listing.model_copy(update={"receipt": receipt})


def _listing_row(ctx: ServiceContext, listing_id: str) -> Row[Any]:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(listings).where(listings.c.id == listing_id)).first()
    if row is None:
        raise NotFound(f"no listing {listing_id}", listing_id=listing_id)
    return row


def get_listing(ctx: ServiceContext, listing_id: str) -> Listing:
    """Public: the listing, its item's badge derived from the log, and the entries behind it."""
    row = _listing_row(ctx, listing_id)
    badge = derive_badge(*item_facts(ctx, row.item_id))
    indexes = [row.published_index, *badge.evidence]
    if row.closed_index is not None:
        indexes.append(row.closed_index)
    return Listing(
        id=row.id,
        item_id=row.item_id,
        platform=row.platform,
        title=row.title,
        price=row.price,
        currency=row.currency,
        status="closed" if row.closed_index is not None else "open",
        closed_reason=row.closed_reason,
        published_at=row.published_at,
        badge=badge_out(badge),
        proof=evidence(ctx, indexes),
        trace_url=f"/v1/items/{row.item_id}/trace",
    )
