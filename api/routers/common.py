"""Shared pieces of the routers: documented error answers and bounded integer parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response

from api.schemas import Problem

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


def answered(response: Response, result: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    """A service's ``(status, answer)`` as a FastAPI answer (a replayed retry keeps its status)."""
    status, answer = result
    response.status_code = status
    return answer
