"""Sizes as people read them: ``31741584`` bytes is "30.3 MB" (1 MB = 1,048,576 bytes)."""

from __future__ import annotations

MB = 1024 * 1024


def megabytes(n: int | float) -> str:
    """``n`` bytes in MB with at most one decimal (no ``.0``): "25", "30.3", "0.5"."""
    value = n / MB
    if value >= 100:
        return f"{value:.0f}"
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def size_words(n: int | float) -> str:
    """``n`` bytes as "30.3 MB" (or "812 KB" below half a megabyte)."""
    if n < MB / 2:
        return f"{max(1, round(n / 1024))} KB"
    return f"{megabytes(n)} MB"
