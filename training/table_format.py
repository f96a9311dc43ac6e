"""How the training reports write a number in a Markdown table."""

from __future__ import annotations

from typing import Any


def cell(v: Any) -> str:
    """A table cell: floats to 3 decimals, a list (an interval) in brackets, nothing as a dash."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list):
        return "[" + ", ".join(cell(x) for x in v) + "]"
    return str(v)
