"""Strict base64: the one decoder of every base64 field the core reads. Pure.

Standard padded base64 (RFC 4648 §4) only: no URL-safe alphabet, no whitespace, no missing
padding. With ``canonical=True`` the one encoding that encodes back the same is required too
(no non-zero spare bits), as C2SP signed notes and checkpoints demand.

Each caller keeps its own error type: the decoder raises ``error(message)``, where ``error`` is
:class:`ValueError` by default or the caller's own class (``InvalidInput``, ``CheckpointError``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable


def b64decode_strict(
    value: object, what: str, *, canonical: bool = False, error: Callable[[str], Exception] = ValueError
) -> bytes:
    """The bytes of the base64 string ``value``; raises ``error("<what> ...")`` if it is not one."""
    if not isinstance(value, str):
        raise error(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: a character outside ASCII
        raise error(f"{what} is not valid base64") from exc
    if canonical and base64.b64encode(raw).decode("ascii") != value:
        raise error(f"{what} is not canonical base64")
    return raw
