"""The log itself, for auditors and witnesses. Every hash is standard base64."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.auth import Ctx
from api.routers.common import MAX_INT, errors
from authenticator.contracts.log import ConsistencyProof, InclusionProof, LogEntries, LogKey
from authenticator.services import traces

router = APIRouter(tags=["log"])


@router.get(
    "/v1/log/checkpoint",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": "authenticator.local/log\n42\n…\n\n— authenticator.local/log …\n"}}}
    },
)
def checkpoint(ctx: Ctx) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note), with the
    configured witnesses' cosignatures (C2SP tlog-cosignature) as extra signature lines once
    they have cosigned it."""
    return PlainTextResponse(traces.served_checkpoint(ctx), headers={"Cache-Control": "no-cache"})


@router.get("/v1/log/key", response_model=LogKey)
def key(ctx: Ctx) -> LogKey:
    """The log's origin and C2SP verifier key (the same string `authenticator ledger key` prints),
    and the verifier keys of the witnesses it submits its checkpoints to."""
    return traces.log_key(ctx)


@router.get("/v1/log/proof/inclusion", response_model=InclusionProof, responses=errors(404, 422))
def inclusion(
    ctx: Ctx,
    index: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
    leaf_hash: Annotated[str | None, Query(max_length=100, description="Standard base64 leaf hash.")] = None,
    size: Annotated[int | None, Query(ge=1, le=MAX_INT, description="Tree size; default the current one.")] = None,
) -> InclusionProof:
    """RFC 9162 inclusion proof of one entry (by index or leaf hash) in the tree of `size`."""
    return traces.inclusion(ctx, index=index, leaf_hash=leaf_hash, size=size)


@router.get(
    "/v1/log/proof/consistency",
    response_model=ConsistencyProof,
    response_model_by_alias=True,
    responses=errors(404, 422),
)
def consistency(
    ctx: Ctx,
    first: Annotated[int, Query(alias="from", ge=0, le=MAX_INT)],
    second: Annotated[int, Query(alias="to", ge=0, le=MAX_INT)],
) -> ConsistencyProof:
    """RFC 9162 consistency proof that the tree of `to` extends the tree of `from`."""
    return traces.consistency(ctx, first, second)


@router.get("/v1/log/entries", response_model=LogEntries, responses=errors(422))
def entries(
    ctx: Ctx,
    start: Annotated[int, Query(ge=0, le=MAX_INT)],
    end: Annotated[int, Query(ge=1, le=MAX_INT, description="Exclusive; at most 1,000 entries per read.")],
) -> LogEntries:
    """Entries `start <= index < end` (canonical bytes, base64), at most 1,000."""
    return traces.entries(ctx, start, end)
