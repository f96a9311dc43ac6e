"""Free text from outside (brands, models, names, titles, reasons, notes): one checker. Pure.

Free text ends up in JSON answers, in HTML pages, in the CLI's terminal output and in log
lines, so characters that change how *other* text is shown are **refused** (not silently
removed, so what is stored and signed is exactly what was sent):

- every C0 and C1 control character (``Cc``: U+0000–U+001F, U+007F–U+009F), which includes
  tab, line feed, carriage return and NEL (U+0085): free text is one line;
- the line and paragraph separators U+2028 and U+2029;
- the bidirectional formatting characters U+061C, U+200E, U+200F, U+202A–U+202E and
  U+2066–U+2069 (a right-to-left override makes ``gpj.exe`` read as ``exe.jpg``);
- lone surrogates (U+D800–U+DFFF), which are not characters and cannot be encoded as UTF-8.

:func:`check_free_text` raises :class:`~authenticator.errors.InvalidInput` (HTTP 422) naming
the field and the character; :data:`FreeText` is the same rule as a pydantic type (a 422
validation problem whose ``loc`` names the field), which also refuses text that is only
white space.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from authenticator.errors import InvalidInput

__all__ = [
    "BLANK_CHARACTERS",
    "FORBIDDEN_FORMAT_CHARACTERS",
    "FREE_TEXT",
    "FREE_TEXT_PATTERN",
    "FreeText",
    "check_free_text",
    "forbidden_character",
]

#: Bidirectional formatting characters (Unicode ``Cf`` with a bidi class of their own), plus
#: the line and paragraph separators (``Zl``, ``Zp``).
FORBIDDEN_FORMAT_CHARACTERS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


def _forbidden(ch: str) -> bool:
    if ch in FORBIDDEN_FORMAT_CHARACTERS:
        return True
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def forbidden_character(value: str) -> str | None:
    """The first character of ``value`` that free text may not contain, or None."""
    if value.isprintable() and not any(ch in FORBIDDEN_FORMAT_CHARACTERS for ch in value):
        return None  # fast path; isprintable() is False for every Cc, Cs, Zl and Zp character
    return next((ch for ch in value if _forbidden(ch)), None)


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if not name and unicodedata.category(ch) == "Cc":
        name = {"\t": "CHARACTER TABULATION", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x85": "NEXT LINE"}.get(
            ch, "control character"
        )
    elif not name:
        name = "surrogate"
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def check_free_text(value: str, field: str) -> str:
    """``value`` unchanged if it is one line of visible text; :class:`InvalidInput` naming ``field`` if not."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    ch = forbidden_character(value)
    if ch is not None:
        raise InvalidInput(
            f"{field} must not contain {_describe(ch)}: control, bidirectional-override and line or "
            "paragraph separator characters are refused in free text",
            field=field,
        )
    return value


def _pydantic_check(value: str, info: ValidationInfo) -> str:
    field = info.field_name or "text"
    try:
        check_free_text(value, field)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    if all(ch in BLANK_CHARACTERS for ch in value):
        raise ValueError(f"{field} must not be blank")
    return value


# Without the surrogates, which a JSON text cannot carry to a schema validator anyway (and
# which some regular-expression engines cannot name).
_NOT_ALLOWED = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
#: White space that free text may contain but may not consist of only (Unicode ``Zs`` and the
#: byte-order mark; the other white space is refused outright). Listed, not ``\s``: engines disagree.
BLANK_CHARACTERS = frozenset(" \u00a0\u1680\u202f\u205f\u3000\ufeff" + "".join(map(chr, range(0x2000, 0x200B))))
_BLANK = r" \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff"
#: The same rule as a regular expression (ECMA-262, Python and Rust engines agree on it),
#: published in the OpenAPI schema so that clients and schema-driven fuzzers know it: allowed
#: characters only, and at least one that is not white space.
FREE_TEXT_PATTERN = f"^[^{_NOT_ALLOWED}]*[^{_NOT_ALLOWED}{_BLANK}][^{_NOT_ALLOWED}]*$"


class _FreeTextCheck:
    """pydantic metadata: :func:`check_free_text` after the ``str`` (and length) validation, and
    :data:`FREE_TEXT_PATTERN` in the JSON schema."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_after_validator_function(_pydantic_check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out["pattern"] = FREE_TEXT_PATTERN
        return out


#: The check as pydantic metadata, to put after length constraints inside an ``Optional``:
#: ``Annotated[str, Field(min_length=1, max_length=200), FREE_TEXT] | None``.
FREE_TEXT = _FreeTextCheck()

#: A pydantic ``str`` that :func:`check_free_text` accepts and that is not blank; add lengths
#: with ``name: FreeText = Field(min_length=..., max_length=...)``.
FreeText = Annotated[str, FREE_TEXT]
