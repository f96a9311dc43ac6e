"""Listings: published and closed in the log; read with a badge and the entries behind it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from authenticator.errors import Conflict, NotFound, PermissionDenied
from authenticator.ledger.log import NewEntry
from authenticator.services.badges import derive_badge, item_facts
from authenticator.services.context import ServiceContext, receipt_json
from authenticator.services.items import require_own_item
from authenticator.services.traces import evidence
from authenticator.store.db import read_tx
from authenticator.store.keys import Principal, new_id
from authenticator.store.tables import listings


def publish_listing(
    ctx: ServiceContext, principal: Principal, item_id: str, title: str, price: str, currency: str
) -> dict[str, Any]:
    """Append ``listing.published``; the title lives in the blob store, its hash in the log."""
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
    [receipt] = ctx.append([NewEntry("listing.published", item_id, body)])
    out = get_listing(ctx, listing_id)
    out["receipt"] = receipt_json(receipt, ctx.ledger.entry(receipt.index).data)
    return out


def close_listing(ctx: ServiceContext, principal: Principal, listing_id: str, reason: str) -> dict[str, Any]:
    row = _listing_row(ctx, listing_id)
    if row.platform != principal.id:
        raise PermissionDenied("only the platform that published a listing may close it")
    if row.closed_index is not None:
        raise Conflict("this listing is already closed", listing_id=listing_id)
    body = {"listing_id": listing_id, "reason": reason}
    [receipt] = ctx.append([NewEntry("listing.closed", row.item_id, body)])
    out = get_listing(ctx, listing_id)
    out["receipt"] = receipt_json(receipt, ctx.ledger.entry(receipt.index).data)
    return out


def _listing_row(ctx: ServiceContext, listing_id: str) -> Any:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(listings).where(listings.c.id == listing_id)).first()
    if row is None:
        raise NotFound(f"no listing {listing_id}", listing_id=listing_id)
    return row


def get_listing(ctx: ServiceContext, listing_id: str) -> dict[str, Any]:
    """Public: the listing, its item's badge derived from the log, and the entries behind it."""
    row = _listing_row(ctx, listing_id)
    badge = derive_badge(*item_facts(ctx, row.item_id))
    indexes = [row.published_index, *badge.evidence]
    if row.closed_index is not None:
        indexes.append(row.closed_index)
    return {
        "id": row.id,
        "item_id": row.item_id,
        "platform": row.platform,
        "title": row.title,
        "price": row.price,
        "currency": row.currency,
        "status": "closed" if row.closed_index is not None else "open",
        "closed_reason": row.closed_reason,
        "published_at": row.published_at,
        "badge": {"level": badge.level, "reason": badge.reason, "evidence": list(badge.evidence)},
        "proof": evidence(ctx, indexes),
        "trace_url": f"/v1/items/{row.item_id}/trace",
    }
