"""Log entries: typed, versioned events encoded as RFC 8785 (JCS) canonical JSON.

An entry is ``{"body", "item", "prev", "time", "type", "v"}`` (that is also its canonical key
order). ``prev`` is the base64 leaf hash of the item's previous entry, or ``null`` for its
first, so an item's history is a hash chain inside the log. Bodies hold hashes and
commitments only, never photos or personal data; each type's body schema (a pydantic model
with ``extra="forbid"``) is checked before an entry is made and again when one is parsed.

The canonical bytes are what the Merkle leaf hashes, so there is exactly one encoding per
entry: :func:`parse_entry` refuses any input that is not byte-for-byte the canonical form.

Three modules: :mod:`authenticator.ledger.canonical` (RFC 8785 bytes),
:mod:`authenticator.ledger.entry_types` (the types and their body schemas) and this one (making
and parsing entries), which also re-exports what callers use of the other two.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from authenticator.errors import EntryValidationError
from authenticator.ledger.canonical import _json_str, canonical_json, ecmascript_number
from authenticator.ledger.entry_types import (
    _ITEM_RE,
    _MODEL_ITEM_PREFIX,
    _PREV_RE,
    _TIME_RE,
    BODY_SCHEMAS,
    ENTRY_TYPES,
)

ENTRY_VERSION = 1
HASH_SIZE = 32
MAX_ENTRY_BYTES = 1 << 20
"""No legitimate entry comes near this; bigger input is refused before JSON parsing."""

# --- Entries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One event of the log. ``prev`` is base64 of the item's previous leaf hash, or None."""

    v: int
    type: str
    item: str
    prev: str | None
    time: str
    body: dict[str, Any]

    @property
    def prev_hash(self) -> bytes | None:
        return None if self.prev is None else base64.b64decode(self.prev)

    def to_dict(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "item": self.item,
            "prev": self.prev,
            "time": self.time,
            "type": self.type,
            "v": self.v,
        }


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def validate_body(type: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``body`` against the schema of ``type``; return it as a plain JSON dict. Optional
    fields the body leaves out stay out (an entry without them encodes as it did before they existed)."""
    return _validated(type, body).model_dump(mode="python", exclude_unset=True)


def _validated(type: str, body: Mapping[str, Any]) -> BaseModel:
    schema = BODY_SCHEMAS.get(type)
    if schema is None:
        raise EntryValidationError(f"unknown entry type {type!r}", type=type)
    if not isinstance(body, Mapping):
        raise EntryValidationError(f"{type} body must be an object", type=type)
    try:
        return schema.model_validate(body if isinstance(body, dict) else dict(body))
    except ValidationError as exc:
        raise EntryValidationError(f"invalid {type} body: {_validation_message(exc)}", type=type) from exc


ITEM_MAP_ITEM = "log:item-map"
MODEL_LINEAGE_ITEM = "model:lineage"
"""The item of ``model.promoted`` and ``model.shadowed`` entries: the models' lineage is one chain."""
_LINEAGE_TYPES = frozenset({"model.promoted", "model.shadowed"})


def _check_item(type: str, item: str, body: Mapping[str, Any]) -> None:
    if not isinstance(item, str) or not _ITEM_RE.fullmatch(item):
        raise EntryValidationError(f"invalid item id {item!r}", item=str(item))
    if type == "model.registered":
        if item != _MODEL_ITEM_PREFIX + body["model_sha256"]:
            raise EntryValidationError("a model.registered entry's item must be 'model:<model_sha256>'")
    elif type in _LINEAGE_TYPES:
        if item != MODEL_LINEAGE_ITEM:
            raise EntryValidationError(f"a {type} entry's item must be {MODEL_LINEAGE_ITEM!r}")
    elif item.startswith(_MODEL_ITEM_PREFIX):
        raise EntryValidationError(f"item ids starting with {_MODEL_ITEM_PREFIX!r} are reserved for models")
    if (type == "log.item_map_started") != (item == ITEM_MAP_ITEM):
        raise EntryValidationError(f"a log.item_map_started entry, and only it, has the item {ITEM_MAP_ITEM!r}")


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: the one time format of entries."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise EntryValidationError("entry time must be timezone-aware")
    try:
        utc = when.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise EntryValidationError(f"entry time is out of range: {exc}") from None
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _check_time(value: Any) -> None:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise EntryValidationError("entry time must be RFC 3339 UTC: YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError as exc:
        raise EntryValidationError(f"entry time is not a real instant: {exc}") from None


def encode_prev(prev: bytes | None) -> str | None:
    if prev is None:
        return None
    if not isinstance(prev, bytes | bytearray) or len(prev) != HASH_SIZE:
        raise EntryValidationError(f"prev must be a {HASH_SIZE}-byte leaf hash or None")
    return base64.b64encode(prev).decode("ascii")


def _check_prev(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _PREV_RE.fullmatch(value):
        raise EntryValidationError("prev must be null or the base64 of a 32-byte leaf hash")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EntryValidationError("prev is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise EntryValidationError("prev is not canonical base64")


def make_entry(
    type: str, item: str, body: Mapping[str, Any], prev: bytes | None, time: datetime | None = None
) -> Entry:
    """Build a validated entry; ``time`` defaults to now (UTC)."""
    checked = validate_body(type, body)
    _check_item(type, item, checked)
    stamp = format_time(time if time is not None else datetime.now(UTC))
    entry = Entry(ENTRY_VERSION, type, item, encode_prev(prev), stamp, checked)
    return entry


def canonical_bytes(entry: Entry) -> bytes:
    """The RFC 8785 bytes of ``entry``: what the log stores and the Merkle leaf hashes."""
    return entry_bytes(entry.type, entry.item, entry.prev, entry.time, canonical_json(entry.body), entry.v)


def entry_bytes(
    type: str, item: str, prev: str | None, time: str, body_canonical: bytes, v: int = ENTRY_VERSION
) -> bytes:
    """Splice an already-canonical body into the canonical envelope.

    Lets a writer canonicalise bodies outside its lock and fill ``prev`` in late for the price
    of a few byte concatenations. Keys in RFC 8785 order: body, item, prev, time, type, v.
    """
    head, tail = entry_envelope(type, item, body_canonical, v)
    return b"".join((head, b"null" if prev is None else _json_str(prev), time_field(time), tail))


def entry_envelope(type: str, item: str, body_canonical: bytes, v: int = ENTRY_VERSION) -> tuple[bytes, bytes]:
    """:func:`entry_bytes` cut around ``prev`` and ``time``: an entry is ``head``,
    :func:`json_prev`, :func:`time_field`, ``tail``. A writer builds both halves before it
    queues for the lock, which then only joins four byte strings per entry."""
    head = b"".join((b'{"body":', body_canonical, b',"item":', _json_str(item), b',"prev":'))
    tail = b"".join((b',"type":', _json_str(type), b',"v":', str(v).encode("ascii"), b"}"))
    return head, tail


def json_prev(prev: bytes | None) -> bytes:
    """The JSON of ``prev`` for a leaf hash (base64 needs no escaping): ``null`` or a string."""
    return b"null" if prev is None else b'"' + base64.b64encode(prev) + b'"'


def time_field(time: str) -> bytes:
    """``,"time":`` and the JSON of ``time``: what follows ``prev`` in an entry."""
    return b',"time":' + _json_str(time)


def _reject_constant(name: str) -> Any:
    raise EntryValidationError(f"{name} is not JSON")


def parse_entry(data: bytes) -> Entry:
    """Parse stored entry bytes; they must be valid and exactly canonical."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EntryValidationError("entry data must be bytes")
    data = bytes(data)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryValidationError("entry is too large")
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EntryValidationError(f"entry is not JSON: {exc}") from exc
    if type(obj) is not dict or obj.keys() != {"body", "item", "prev", "time", "type", "v"}:
        raise EntryValidationError("entry must be an object with exactly body, item, prev, time, type, v")
    if type(obj["v"]) is not int or obj["v"] != ENTRY_VERSION:
        raise EntryValidationError(f"unsupported entry version {obj['v']!r}")
    etype = obj["type"]
    if not isinstance(etype, str) or etype not in BODY_SCHEMAS:
        raise EntryValidationError(f"unknown entry type {etype!r}")
    if type(obj["body"]) is not dict:
        raise EntryValidationError("entry body must be an object")
    # Strict schemas coerce nothing (bar int -> float, which encodes the same), so the parsed
    # body itself is kept: no dump, and the canonical check below runs on exactly what was read.
    body: dict[str, Any] = obj["body"]
    _validated(etype, body)
    _check_item(etype, obj["item"], body)
    _check_time(obj["time"])
    _check_prev(obj["prev"])
    entry = Entry(ENTRY_VERSION, etype, obj["item"], obj["prev"], obj["time"], body)
    if canonical_bytes(entry) != data:
        raise EntryValidationError("entry bytes are not in RFC 8785 canonical form")
    return entry


__all__ = [
    "BODY_SCHEMAS",
    "ENTRY_TYPES",
    "ENTRY_VERSION",
    "Entry",
    "canonical_bytes",
    "canonical_json",
    "ecmascript_number",
    "entry_bytes",
    "make_entry",
    "parse_entry",
    "validate_body",
]
