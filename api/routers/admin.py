"""Operator endpoints: API keys for platforms and other operators."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Admin, Ctx
from api.routers.common import errors
from api.schemas import KeyCreate
from authenticator.contracts.admin import KeyCreated
from authenticator.store.keys import create_key

router = APIRouter(tags=["admin"])


@router.post("/v1/keys", status_code=201, response_model=KeyCreated, responses=errors(401, 403, 413, 415, 422))
def new_key(body: KeyCreate, principal: Admin, ctx: Ctx) -> KeyCreated:
    """Create a platform (or operator) and its API key (admin). The key is shown once."""
    issued = create_key(ctx.engine, body.role, body.name)
    return KeyCreated(principal_id=issued.principal_id, role=issued.role, key_id=issued.key_id, api_key=issued.api_key)
