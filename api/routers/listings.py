"""Listings with a badge derived from the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Ctx, Platform
from api.routers.common import errors
from api.schemas import Listing, ListingClose, ListingCreate
from authenticator.services import listings

router = APIRouter(tags=["listings"])


@router.post("/v1/listings", status_code=201, response_model=Listing, responses=errors(401, 403, 404, 413, 415, 422))
def publish_listing(body: ListingCreate, principal: Platform, ctx: Ctx) -> dict[str, Any]:
    """Publish a listing of one of your items (platform). Appends `listing.published`."""
    return listings.publish_listing(ctx, principal, body.item_id, body.title, body.price, body.currency)


@router.post(
    "/v1/listings/{listing_id}/close", response_model=Listing, responses=errors(401, 403, 404, 409, 413, 415, 422)
)
def close_listing(listing_id: str, body: ListingClose, principal: Platform, ctx: Ctx) -> dict[str, Any]:
    """Close a listing (the platform that published it). Appends `listing.closed`."""
    return listings.close_listing(ctx, principal, listing_id, body.reason)


@router.get("/v1/listings/{listing_id}", response_model=Listing, responses=errors(404))
def get_listing(listing_id: str, ctx: Ctx) -> dict[str, Any]:
    """Public: the listing with its badge (lab-certified > AI-verified > inconclusive; warning), the entries
    behind it and their inclusion proofs."""
    return listings.get_listing(ctx, listing_id)
