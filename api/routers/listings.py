"""Listings with a badge derived from the log."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.auth import Ctx, Platform
from api.routers.common import IdempotencyKeyHeader, answered, errors
from api.schemas import ListingClose, ListingCreate
from authenticator.contracts.listings import Listing
from authenticator.services import listings

router = APIRouter(tags=["listings"])


@router.post(
    "/v1/listings", status_code=201, response_model=Listing, responses=errors(401, 403, 404, 409, 413, 415, 422)
)
def publish_listing(
    body: ListingCreate,
    principal: Platform,
    ctx: Ctx,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Listing | JSONResponse:
    """Publish a listing of one of your items (platform). Appends `listing.published`.

    An item has one open listing at a time (409 otherwise)."""
    return answered(
        response,
        listings.publish_listing(
            ctx, principal, body.item_id, body.title, body.price, body.currency, key=idempotency_key
        ),
    )


@router.post(
    "/v1/listings/{listing_id}/close", response_model=Listing, responses=errors(401, 403, 404, 409, 413, 415, 422)
)
def close_listing(
    listing_id: str,
    body: ListingClose,
    principal: Platform,
    ctx: Ctx,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Listing | JSONResponse:
    """Close a listing (the platform that published it). Appends `listing.closed`; a second close gets 409."""
    return answered(response, listings.close_listing(ctx, principal, listing_id, body.reason, key=idempotency_key))


@router.get("/v1/listings/{listing_id}", response_model=Listing, responses=errors(404))
def get_listing(listing_id: str, ctx: Ctx) -> Listing:
    """Public: the listing with its badge (lab-certified > AI-verified > inconclusive; warning), the entries
    behind it and their inclusion proofs."""
    return listings.get_listing(ctx, listing_id)
