"""Shared pieces of the routers: documented error answers and bounded integer parameters."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Header, Response
from fastapi.responses import JSONResponse

from api.schemas import Problem
from authenticator.contracts.common import Appended

A = TypeVar("A")

MAX_INT = 2**53 - 1
"""Largest integer any parameter accepts (bigger values could not be a log index anyway)."""


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem+json errors of the given statuses."""
    return {
        s: {
            "model": Problem,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x20-\x7e]+$",
        description="Retry-safe: the same key with the same request gets the first answer and appends nothing.",
    ),
]


def answered(response: Response, result: tuple[int, A | Appended]) -> A | JSONResponse:
    """A service's ``(status, answer)`` as a FastAPI answer (a replayed retry keeps its status).

    :class:`Appended` (the entry is in the log, the full answer could not be read back) is sent
    as it is, past the route's response model, with the command's status."""
    status, answer = result
    if isinstance(answer, Appended):
        return JSONResponse(answer.model_dump(mode="json"), status_code=status)
    response.status_code = status
    return answer
