"""One strict JSON loader for every JSON text the service reads from outside. Pure.

It reads I-JSON (RFC 7493), the profile meant for exactly this: UTF-8 only (no byte-order
mark, no UTF-16/32 guessing), **no duplicate object member names** at any depth, no lone
surrogates (``"\\ud800"``), and only finite numbers (no ``NaN``/``Infinity`` literals, no
``1e999`` that would become infinity). Python's ``json.loads`` accepts all of these and keeps
the *last* of two equal keys while other parsers keep the first, so the same bytes could mean
two different things to the service and to whoever checks its records. An integer longer than
Python reads (4300 digits) is refused in words, not with the interpreter's advice.

:func:`loads` raises :class:`StrictJSONError` (a ``ValueError``) for anything it refuses, and
:class:`DuplicateKeyError` (a subclass, naming the key) for a repeated member name.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

__all__ = ["DuplicateKeyError", "StrictJSONError", "loads"]


class StrictJSONError(ValueError):
    """The text is not strict JSON (I-JSON); the message says why."""


class DuplicateKeyError(StrictJSONError):
    """An object names the same member twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate JSON object key {_show(key)}")
        self.key = key


def _show(key: str) -> str:
    shown = json.dumps(key[:80])  # escapes controls and surrogates: safe to put in a message
    return shown if len(key) <= 80 else shown[:-1] + '…"'


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKeyError(key)
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"the number {text[:40]} is out of range")
    return value


def _integer(text: str) -> int:
    """An integer literal; one longer than Python converts (``sys.get_int_max_str_digits()``,
    4300 digits by default) is refused in words, not with the interpreter's advice on raising
    the limit."""
    try:
        return int(text)
    except ValueError:
        digits = len(text.lstrip("-"))
        raise StrictJSONError(
            f"a number has too many digits ({digits}; at most {sys.get_int_max_str_digits()})"
        ) from None


def _check_strings(value: Any) -> None:
    """Refuse lone surrogates anywhere (keys included); iterative, so depth costs no stack."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            strings = [v]
        elif isinstance(v, dict):
            strings = list(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
            continue
        else:
            continue
        for s in strings:
            try:
                s.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise StrictJSONError("JSON strings must not contain lone surrogates (\\ud800-\\udfff)") from exc


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse strict JSON; :class:`StrictJSONError` (``DuplicateKeyError`` for a repeated key) if refused."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError("JSON must be encoded as UTF-8") from exc
    if text.startswith("\ufeff"):
        raise StrictJSONError("JSON must not start with a byte-order mark")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_integer,
        )
    except StrictJSONError:
        raise
    except RecursionError as exc:
        raise StrictJSONError("JSON nested too deeply") from exc
    except ValueError as exc:  # json.JSONDecodeError
        raise StrictJSONError(str(exc)) from exc
    _check_strings(value)
    return value
