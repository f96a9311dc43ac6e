"""Shared pieces of the routers: documented error answers and bounded integer parameters."""

from __future__ import annotations

from typing import Any

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
