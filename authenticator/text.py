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
validation problem whose ``loc`` names the field), which also refuses **blank** text
(:func:`is_blank`): nothing left once white space and invisible characters are set aside (format
characters, ``Cf``, such as U+200B ZERO WIDTH SPACE, and fillers such as U+3164 HANGUL FILLER
or U+2800 BRAILLE PATTERN BLANK), so that a brand of one zero-width space is not "one line of
visible text". Text with anything visible in it is kept as sent, invisible characters included
(an emoji sequence joined by U+200D is fine).
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
    "is_blank",
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
    if is_blank(value):
        raise ValueError(f"{field} must not be blank")
    return value


# Without the surrogates, which a JSON text cannot carry to a schema validator anyway (and
# which some regular-expression engines cannot name).
_NOT_ALLOWED = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
#: Characters nobody sees, which free text may contain but may not consist of only: white space
#: (Unicode ``Zs``; the other white space is refused outright), every format character (``Cf``,
#: Unicode 14, with the unassigned default-ignorable code points around them: U+2065, U+FFF0-U+FFF8,
#: the tag block U+E0000-U+E0FFF) and the fillers and selectors that show nothing either. Listed,
#: not ``\s`` or ``\p{Cf}``: regular-expression engines disagree on those.
_BLANK_RANGES: tuple[tuple[int, int], ...] = (
    # Zs
    (0x0020, 0x0020),
    (0x00A0, 0x00A0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    # Cf (the bidirectional ones among them are refused anyway)
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
    # invisible fillers, joiners and variation selectors that are not Cf
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG / JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ / AA
    (0x180B, 0x180D),  # MONGOLIAN FREE VARIATION SELECTORS
    (0x180F, 0x180F),
    (0x2800, 0x2800),  # BRAILLE PATTERN BLANK
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTORS
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
)
BLANK_CHARACTERS = frozenset(chr(c) for lo, hi in _BLANK_RANGES for c in range(lo, hi + 1))


def is_blank(value: str) -> bool:
    """Whether nothing of ``value`` would be seen (empty, or only :data:`BLANK_CHARACTERS`)."""
    return all(ch in BLANK_CHARACTERS for ch in value)


def _class_range(lo: int, hi: int) -> str:
    """A character-class range: ``\\uXXXX`` escapes in the BMP, the characters themselves above it
    (ECMA-262 with the ``u`` flag, as JSON Schema asks, Python and Rust all read them as code points)."""
    if hi > 0xFFFF:
        return chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}"
    return f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}"


_BLANK = "".join(_class_range(lo, hi) for lo, hi in _BLANK_RANGES)
#: The same rule as a regular expression (ECMA-262, Python and Rust engines agree on it),
#: published in the OpenAPI schema so that clients and schema-driven fuzzers know it: allowed
#: characters only, and at least one that is not blank.
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
