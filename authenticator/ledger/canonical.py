"""RFC 8785 (JCS) canonical JSON: the one encoding of every entry the Merkle leaves hash.

Speed: :func:`canonical_json` uses the C ``json`` encoder when the value provably encodes the
same as RFC 8785 (ASCII object keys, exact JSON types, safe integers and floats whose shortest
repr already is the ECMAScript form) and falls back to the ``rfc8785`` package otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import rfc8785

from authenticator.errors import EntryValidationError

# --- Canonical JSON ---------------------------------------------------------------------------

_INT_LIMIT = 2**53 - 1
_encode_fast: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def _fast_safe(value: Any) -> bool:
    """Whether the C ``json`` encoder gives exactly the RFC 8785 bytes for ``value``.

    JSON strings are escaped identically by both; they differ on key order (UTF-16 vs code
    points: equal for ASCII keys), on floats (``repr`` vs ECMAScript: equal for non-integral
    finite floats in [1e-4, 1e16)) and on non-JSON types (left to ``rfc8785`` to refuse).
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        n: int = value
        return -_INT_LIMIT <= n <= _INT_LIMIT
    if t is float:
        a = abs(value)
        return 1e-4 <= a < 1e16 and not value.is_integer()
    if t is dict:
        for k, v in value.items():  # noqa: SIM110 (a plain loop is faster than all() here)
            if type(k) is not str or not k.isascii() or not _fast_safe(v):
                return False
        return True
    if t is list:
        for v in value:  # noqa: SIM110
            if not _fast_safe(v):
                return False
        return True
    return False


_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # C; escapes exactly as RFC 8785


def ecmascript_number(f: float) -> str:
    """A finite float as ECMAScript's Number::toString writes it (RFC 8785 §3.2.2.3).

    Python's ``repr`` gives the same shortest round-trip digits; only their layout differs.
    """
    if f != f or f in (math.inf, -math.inf):
        raise EntryValidationError(f"{f} has no JSON form")
    if f == 0:
        return "0"
    if f < 0:
        return "-" + ecmascript_number(-f)
    mantissa, _, exp = repr(f).partition("e")
    int_part, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = int_part + frac
    n = len(int_part) + (int(exp) if exp else 0)  # value = 0.<digits> x 10^n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    s = stripped.rstrip("0")
    k = len(s)
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + s
    e = n - 1
    return f"{s if k == 1 else s[0] + '.' + s[1:]}e{'+' if e >= 0 else '-'}{abs(e)}"


def _utf16_key(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-16-be", "surrogatepass")


def _jcs(value: Any, out: list[str]) -> None:
    """RFC 8785 in Python for what the C fast path cannot do (floats, non-ASCII keys)."""
    t = type(value)
    if t is str:
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif t is bool:
        out.append("true" if value else "false")
    elif t is int:
        if not -_INT_LIMIT <= value <= _INT_LIMIT:
            raise EntryValidationError(f"{value} exceeds the integer range of JSON numbers (2**53 - 1)")
        out.append(int.__repr__(value))
    elif t is float:
        out.append(ecmascript_number(value))
    elif t is dict:
        items = list(value.items())
        for k, _ in items:
            if type(k) is not str:
                raise EntryValidationError("object keys must be strings")
        items.sort(key=_utf16_key)
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(_encode_str(k))
            out.append(":")
            _jcs(v, out)
        out.append("}")
    elif t is list or t is tuple:
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _jcs(v, out)
        out.append("]")
    else:  # subclasses (str enums ...) and foreign types: the reference decides
        out.append(rfc8785.dumps(value).decode("utf-8"))


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``; :class:`EntryValidationError` if it has none."""
    try:
        if _fast_safe(value):
            return _encode_fast(value).encode("utf-8")
        out: list[str] = []
        _jcs(value, out)
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryValidationError("text is not valid Unicode (lone surrogate)") from exc
    except rfc8785.CanonicalizationError as exc:
        raise EntryValidationError(f"value has no canonical JSON form: {exc}") from exc
    except RecursionError as exc:
        raise EntryValidationError("value is nested too deeply") from exc


def _json_str(value: str) -> bytes:
    try:
        return _encode_fast(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryValidationError("text is not valid Unicode (lone surrogate)") from exc
