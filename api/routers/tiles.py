"""The log as C2SP tlog-tiles (c2sp.org/tlog-tiles), at the root so standard clients work.

``GET /checkpoint`` (the latest signed checkpoint), ``GET /tile/<L>/<N>[.p/<W>]`` (hash tiles)
and ``GET /tile/entries/<N>[.p/<W>]`` (entry bundles), all public. Tiles are read from the
database, one range read each (see docs/ledger.md, "Tiles"): a tile's bytes depend only on its
path, so full tiles are cached as immutable; a tile the log cannot fill is a 404.
"""

from __future__ import annotations

import gzip
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Ctx
from api.problems import problem
from api.routers.common import errors
from authenticator.errors import IntegrityError
from authenticator.ledger.tiles import TilePathError, parse_tile_path, tile_content
from authenticator.services import traces

router = APIRouter(tags=["log"])

FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=60"
"""A partial tile's bytes never change either, but it is superseded by the full tile within a
few checkpoints, and the spec lets a log stop serving it then: no point in caching it for long."""
CHECKPOINT_CACHE = "public, max-age=5"
"""The spec: the checkpoint is mutable, "headers SHOULD prevent caching beyond a few seconds"."""
NOT_FOUND_CACHE = "no-store"
"""A tile beyond the tree exists after the next append: no cache may keep the 404."""
OCTETS = "application/octet-stream"


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": "authenticator.local/log\n42\n…\n"}}}},
)
def checkpoint(ctx: Ctx) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note) with the
    witnesses' cosignatures, as `/v1/log/checkpoint` serves it; cacheable for a few seconds."""
    return Response(
        traces.served_checkpoint(ctx),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


def _not_found(request: Request, detail: str) -> JSONResponse:
    return problem(404, "not_found", detail, instance=request.url.path, headers={"Cache-Control": NOT_FOUND_CACHE})


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` admits gzip (``gzip`` or ``*`` with a non-zero weight)."""
    weights: dict[str, float] = {}
    for part in (accept_encoding or "").split(","):
        name, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights.setdefault(name.lower(), weight)
    return weights.get("gzip", weights.get("*", 0.0)) > 0


@router.get(
    "/tile/{tile_path:path}",
    response_class=Response,
    responses={
        200: {
            "content": {
                OCTETS: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(a hash tile: 256 SHA-256 hashes, 8,192 bytes)",
                }
            }
        },
        **errors(404),
    },
)
def tile(
    ctx: Ctx,
    request: Request,
    tile_path: Annotated[str, Path(description="`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.")],
    accept_encoding: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """A hash tile (`tile/<L>/<N>[.p/<W>]`: 256 hashes, or `W` of a partial tile, of the
    subtrees of level 8·L) or an entry bundle (`tile/entries/<N>[.p/<W>]`: each entry as a
    big-endian uint16 length and its bytes; gzip when accepted). 404 for a tile beyond the tree."""
    try:
        wanted = parse_tile_path("tile/" + tile_path)
    except TilePathError as exc:
        return _not_found(request, str(exc))
    ledger = ctx.ledger

    def entry_range(start: int, end: int) -> list[bytes]:
        rows = ledger.entries(start, end)
        for k, row in enumerate(rows):
            if row.index != start + k:
                raise IntegrityError(f"entry {start + k} is missing", index=start + k)
        return [row.data for row in rows]

    data = tile_content(wanted, ledger.node_range, entry_range)
    if data is None:
        what = "entry bundle" if wanted.entries else "tile"
        return _not_found(request, f"the log does not have {what} {wanted.path()} (yet)")
    headers = {"Cache-Control": PARTIAL_TILE_CACHE if wanted.partial else FULL_TILE_CACHE}
    if wanted.entries:
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(accept_encoding):
            data = gzip.compress(data, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=OCTETS, headers=headers)
