"""The certificate payload a lab signs, typed exactly as docs/certificates.md says. Pure.

:func:`parse_payload` reads the payload bytes of an envelope (strict JSON: no duplicate keys,
no ``NaN``; RFC 8785 canonical form) and :func:`check_payload` checks the fields, raising
:class:`~authenticator.errors.InvalidInput` (HTTP 422) naming the first field that is off.
Types are exact: ``"v": true`` is not the integer 1 (Python's ``True == 1`` would say it is),
``1.0`` is not ``1``, and free text (``method``, ``notes``) follows
:func:`authenticator.text.check_free_text`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from authenticator.errors import EntryValidationError, InvalidInput
from authenticator.ledger.entries import canonical_json
from authenticator.strict_json import DuplicateKeyError, StrictJSONError, loads
from authenticator.text import check_free_text, is_blank

OUTCOMES = ("authentic", "counterfeit")
REQUIRED = frozenset({"item_id", "lab_id", "outcome", "inspection_date", "method", "photos"})
ALLOWED = REQUIRED | {"v", "report_sha256", "notes"}
VERSION = 1
MAX_PHOTOS = 64
MAX_METHOD = 500
MAX_NOTES = 2000
#: The earliest inspection date accepted; the latest is one day after today (UTC), so a lab
#: east of UTC can sign on its own calendar day.
EARLIEST_INSPECTION = date(1990, 1, 1)
FUTURE_SLACK = timedelta(days=1)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ITEM_ID = re.compile(r"itm_[0-9a-z]{1,64}")
_LAB_ID = re.compile(r"lab_[0-9a-z]{1,64}")


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _text(payload: dict[str, Any], field: str, min_len: int, max_len: int) -> None:
    value = payload[field]
    if not isinstance(value, str) or not min_len <= len(value) <= max_len:
        raise InvalidInput(f"{field} must be a text of {min_len} to {max_len} characters", field=field)
    check_free_text(value, field)
    if min_len and is_blank(value):  # white space and invisible characters only
        raise InvalidInput(f"{field} must not be blank", field=field)


def check_inspection_date(value: Any, *, today: date | None = None) -> date:
    """The date of ``value`` (``YYYY-MM-DD``, from 1990-01-01 to tomorrow UTC); InvalidInput if not."""
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        raise InvalidInput("inspection_date must be a YYYY-MM-DD date", field="inspection_date")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput("inspection_date must be a YYYY-MM-DD date", field="inspection_date") from exc
    latest = (today or datetime.now(UTC).date()) + FUTURE_SLACK
    if not EARLIEST_INSPECTION <= day <= latest:
        raise InvalidInput(
            f"inspection_date must be from {EARLIEST_INSPECTION.isoformat()} to {latest.isoformat()}",
            field="inspection_date",
        )
    return day


def check_payload(payload: dict[str, Any], *, today: date | None = None) -> None:
    """The certificate payload schema (docs/certificates.md); :class:`InvalidInput` if anything is off.

    ``today`` (default: the current UTC date) sets the end of the inspection-date window.
    """
    if not isinstance(payload, dict):
        raise InvalidInput("the certificate payload must be a JSON object")
    missing = REQUIRED - payload.keys()
    if missing:
        raise InvalidInput(f"the certificate payload lacks {', '.join(sorted(missing))}")
    extra = payload.keys() - ALLOWED
    if extra:
        raise InvalidInput(f"the certificate payload has unknown fields {', '.join(sorted(map(repr, extra)))[:300]}")
    if "v" in payload:
        v = payload["v"]
        if type(v) is not int:
            raise InvalidInput("v must be the integer 1", field="v")
        if v != VERSION:
            raise InvalidInput("unsupported certificate payload version", field="v")
    for field, pattern, shape in (("item_id", _ITEM_ID, "itm_…"), ("lab_id", _LAB_ID, "lab_…")):
        value = payload[field]
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise InvalidInput(f"{field} must be an id ({shape})", field=field)
    outcome = payload["outcome"]
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise InvalidInput("outcome must be authentic or counterfeit", field="outcome")
    check_inspection_date(payload["inspection_date"], today=today)
    _text(payload, "method", 1, MAX_METHOD)
    photos = payload["photos"]
    if not isinstance(photos, list) or len(photos) > MAX_PHOTOS or not all(_is_sha256(p) for p in photos):
        raise InvalidInput(
            f"photos must be a list of at most {MAX_PHOTOS} lower-case hex SHA-256 digests", field="photos"
        )
    report = payload.get("report_sha256")
    if report is not None and not _is_sha256(report):
        raise InvalidInput("report_sha256 must be a lower-case hex SHA-256 digest or null", field="report_sha256")
    if payload.get("notes") is not None:
        _text(payload, "notes", 0, MAX_NOTES)


def parse_payload(raw: bytes, *, today: date | None = None) -> dict[str, Any]:
    """The checked payload of a certificate from its exact bytes; :class:`InvalidInput` if refused.

    The bytes must be strict JSON (no duplicate keys, finite numbers, UTF-8) and exactly the
    RFC 8785 canonical form of the object they hold; then :func:`check_payload` applies.

    Answered as the JSON object itself, not a typed copy: it is exactly what the lab signed (its
    canonical bytes are the signed bytes), and its fields' rules are :func:`check_payload`'s.
    """
    try:
        payload = loads(raw)
    except DuplicateKeyError as exc:
        raise InvalidInput(f"the certificate payload has a {exc}", key=exc.key) from exc
    except StrictJSONError as exc:
        raise InvalidInput(f"the envelope's payload is not strict JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the certificate payload must be a JSON object")
    try:
        canonical = canonical_json(payload)
    except EntryValidationError as exc:
        raise InvalidInput(f"the certificate payload has no canonical JSON form: {exc.message}") from exc
    if canonical != raw:
        raise InvalidInput("the certificate payload must be RFC 8785 canonical JSON")
    check_payload(payload, today=today)
    return payload
