"""Operator endpoints: API keys for platforms and other operators."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Admin, Ctx, PresentedKey
from api.routers.common import IdempotencyKeyHeader, errors
from api.schemas import KeyCreate
from authenticator.contracts.admin import KeyCreated
from authenticator.services import registrations

router = APIRouter(tags=["admin"])


@router.post("/v1/keys", status_code=201, response_model=KeyCreated, responses=errors(401, 403, 409, 413, 415, 422))
def new_key(
    body: KeyCreate,
    principal: Admin,
    presented: PresentedKey,
    ctx: Ctx,
    idempotency_key: IdempotencyKeyHeader = None,
) -> KeyCreated:
    """Create a platform (or operator) and its API key (admin). The key is shown once.

    Retry-safe with an `Idempotency-Key`: the same key and body from the same admin key get the
    first answer, its API key included, for 24 hours (after that, or from another key of the same
    admin, 409 naming the principal and key id); another body with the key gets 409."""
    caller = registrations.Caller(principal, presented)
    return registrations.create_key(ctx, caller, body.role, body.name, key=idempotency_key)
