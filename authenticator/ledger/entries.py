"""Log entries: typed, versioned events encoded as RFC 8785 (JCS) canonical JSON.

An entry is ``{"body", "item", "prev", "time", "type", "v"}`` (that is also its canonical key
order). ``prev`` is the base64 leaf hash of the item's previous entry, or ``null`` for its
first, so an item's history is a hash chain inside the log. Bodies hold hashes and
commitments only, never photos or personal data; each type's body schema (a pydantic model
with ``extra="forbid"``) is checked before an entry is made and again when one is parsed.

The canonical bytes are what the Merkle leaf hashes, so there is exactly one encoding per
entry: :func:`parse_entry` refuses any input that is not byte-for-byte the canonical form.

Speed: :func:`canonical_json` uses the C ``json`` encoder when the value provably encodes the
same as RFC 8785 (ASCII object keys, exact JSON types, safe integers and floats whose shortest
repr already is the ECMAScript form) and falls back to the ``rfc8785`` package otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, ValidationError, model_validator

from authenticator.errors import EntryValidationError

ENTRY_VERSION = 1
HASH_SIZE = 32
MAX_ENTRY_BYTES = 1 << 20
"""No legitimate entry comes near this; bigger input is refused before JSON parsing."""

# --- Field types shared by the schemas ----------------------------------------------------------

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""Lower-case hex SHA-256 of some content (a photo, a model file, a payload)."""
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
"""An opaque id (item, assessment, certificate, lab, listing, platform key): no spaces, ASCII."""
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:\-]{0,63}$")]
"""A machine-readable reason code such as ``blurry`` or ``low_resolution``."""
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A short single-line label (brand, model name, version) with no control characters."""
ReasonText = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
KeyId = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Base64Text = Annotated[
    str,
    StringConstraints(max_length=16384, pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"),
]
DecimalText = Annotated[str, StringConstraints(pattern=r"^(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
DateText = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]

_ITEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_PREV_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
_MODEL_ITEM_PREFIX = "model:"


class _Body(BaseModel):
    """Base of every body schema: unknown fields refused, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class ItemRegistered(_Body):
    category: ShortText
    brand: ShortText
    model: ShortText
    serial_commitment: Sha256Hex | None
    """SHA-256 of salt || serial number: proves the serial later without publishing it."""
    platform: Identifier
    """Key id of the platform that registered the item."""


class PerPhoto(_Body):
    sha256: Sha256Hex
    probability_authentic: Probability | None
    category: ShortText | None
    reasons: list[Code] = Field(max_length=64)
    view: Code | None = None
    """The capture guide's view the uploader declared (``unspecified`` when the upload declared views
    but not this photo's); absent from entries of uploads that declared none (and older entries)."""


class Thresholds(_Body):
    authentic_above: Probability
    counterfeit_below: Probability

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.counterfeit_below > self.authentic_above:
            raise ValueError("counterfeit_below must not exceed authentic_above")
        return self


class AssessmentRecorded(_Body):
    assessment_id: Identifier
    photo_sha256: list[Sha256Hex] = Field(min_length=1, max_length=64)
    model_sha256: Sha256Hex
    model_version: ShortText
    decision: Literal["authentic", "counterfeit", "inconclusive"]
    probability_authentic: Probability | None
    per_photo: list[PerPhoto] = Field(max_length=64)
    thresholds: Thresholds
    reasons: list[Code] = Field(max_length=64)
    missing_views: list[Code] | None = Field(default=None, max_length=64)
    """Required views of the item's capture guide that no photo was declared as (with reason
    ``missing_views``); absent when the upload declared no views (and from older entries)."""


class CertificateAttached(_Body):
    certificate_id: Identifier
    lab_id: Identifier
    outcome: Literal["authentic", "counterfeit"]
    payload_sha256: Sha256Hex
    envelope_sha256: Sha256Hex
    signature: Base64Text
    keyid: KeyId | None
    """The DSSE signature's keyid as the lab sent it (DSSE allows an empty one)."""
    inspection_date: DateText

    @model_validator(mode="after")
    def _real_date(self) -> CertificateAttached:
        try:
            date.fromisoformat(self.inspection_date)
        except ValueError as exc:
            raise ValueError(f"inspection_date is not a calendar date: {exc}") from None
        return self


class CertificateRevoked(_Body):
    certificate_id: Identifier
    lab_id: Identifier
    reason: ReasonText


class ListingPublished(_Body):
    listing_id: Identifier
    platform: Identifier
    title_sha256: Sha256Hex
    price: DecimalText
    """A decimal string, never a float: money must not round."""
    currency: CurrencyCode


class ListingClosed(_Body):
    listing_id: Identifier
    reason: ReasonText


class CustodyTransferred(_Body):
    event: Literal["received_for_consignment", "bought_back", "consigned", "sold"]
    platform: Identifier
    counterparty_commitment: Sha256Hex | None
    """SHA-256 of salt || counterparty id: the party is provable later, never published."""


class ModelRegistered(_Body):
    model_sha256: Sha256Hex
    name: ShortText
    version: ShortText
    card_sha256: Sha256Hex
    metrics: dict[str, JsonValue]


class ModelPromoted(_Body):
    """The model that serves verdicts from now on (every worker of every server switches to it
    before its next assessment): a promotion after an evaluation against the model it replaces, or a
    rollback to the model the current one replaced. Item ``model:lineage``: the promotions form
    one hash chain."""

    model_sha256: Sha256Hex
    card_sha256: Sha256Hex
    evaluation_sha256: Sha256Hex | None
    """SHA-256 of the evaluation report (report.json, kept in the blob store); None for a rollback to a
    model that was never evaluated (the shipped one)."""
    replaces: Sha256Hex
    """The model that served until this entry."""
    action: Literal["promotion", "rollback"]
    name: ShortText
    version: ShortText


class ModelShadowed(_Body):
    """A candidate starts (``active``) or stops scoring live assessments in the background; its
    decisions never reach a verdict. Item ``model:lineage``."""

    model_sha256: Sha256Hex
    card_sha256: Sha256Hex
    evaluation_sha256: Sha256Hex | None
    active: bool
    name: ShortText
    version: ShortText


class PhotosErased(_Body):
    """Photos of an assessment taken back (a seller's request, or the retention period): their
    bytes and heat maps left the blob store. The verdict and its photo hashes stay in the log."""

    assessment_id: Identifier
    photo_sha256: list[Sha256Hex] = Field(min_length=1, max_length=64)
    """The hashes erased by this entry (photos of ``assessment_id`` not erased before)."""
    by: Identifier
    """Who erased them: the platform's or operator's principal id, or ``operator`` (retention)."""
    reason: ShortText | None


class ItemMapStarted(_Body):
    """From this entry on, every checkpoint commits to every item's head (the item map, see
    ``authenticator/ledger/item_map.py``). Appended once, when a log from an older version
    (whose checkpoints did not) is opened; a new log commits to the map from its first checkpoint."""

    map: Literal["item-heads/v1"]


BODY_SCHEMAS: dict[str, type[BaseModel]] = {
    "item.registered": ItemRegistered,
    "assessment.recorded": AssessmentRecorded,
    "certificate.attached": CertificateAttached,
    "certificate.revoked": CertificateRevoked,
    "listing.published": ListingPublished,
    "listing.closed": ListingClosed,
    "custody.transferred": CustodyTransferred,
    "model.registered": ModelRegistered,
    "model.promoted": ModelPromoted,
    "model.shadowed": ModelShadowed,
    "photos.erased": PhotosErased,
    "log.item_map_started": ItemMapStarted,
}
"""Entry type -> body schema. Add a type here (and to the docs) to extend the log."""

ENTRY_TYPES: frozenset[str] = frozenset(BODY_SCHEMAS)


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
    return b"".join(
        (
            b'{"body":',
            body_canonical,
            b',"item":',
            _json_str(item),
            b',"prev":',
            b"null" if prev is None else _json_str(prev),
            b',"time":',
            _json_str(time),
            b',"type":',
            _json_str(type),
            b',"v":',
            str(v).encode("ascii"),
            b"}",
        )
    )


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
    "entry_bytes",
    "make_entry",
    "parse_entry",
    "validate_body",
]
