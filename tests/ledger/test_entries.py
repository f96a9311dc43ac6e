"""Log entries: RFC 8785 canonical bytes, strict parsing, and every type's body schema."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from authenticator.errors import EntryValidationError
from authenticator.ledger.entries import (
    BODY_SCHEMAS,
    ENTRY_TYPES,
    ENTRY_VERSION,
    Entry,
    canonical_bytes,
    canonical_json,
    ecmascript_number,
    entry_bytes,
    make_entry,
    parse_entry,
    validate_body,
)


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


MODEL_SHA = sha("model.onnx")
WHEN = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
PREV = hashlib.sha256(b"previous leaf").digest()

VALID: dict[str, dict[str, Any]] = {
    "item.registered": {
        "category": "bag",
        "brand": "Hermès",
        "model": "Birkin 30",
        "serial_commitment": sha("salt" + "SN123"),
        "platform": "platform-1",
    },
    "assessment.recorded": {
        "assessment_id": "asm_01HV",
        "photo_sha256": [sha("p1"), sha("p2")],
        "model_sha256": MODEL_SHA,
        "model_version": "2026.03.1",
        "decision": "inconclusive",
        "probability_authentic": 0.6180339887,
        "per_photo": [
            {"sha256": sha("p1"), "probability_authentic": 0.71, "category": "bag", "reasons": []},
            {"sha256": sha("p2"), "probability_authentic": None, "category": None, "reasons": ["blurry"]},
        ],
        "thresholds": {"authentic_above": 0.95, "counterfeit_below": 0.05},
        "reasons": ["uncertain_band", "photo_quality"],
    },
    "certificate.attached": {
        "certificate_id": "cert-42",
        "lab_id": "lab-acme",
        "outcome": "authentic",
        "payload_sha256": sha("payload"),
        "envelope_sha256": sha("envelope"),
        "signature": base64.b64encode(b"\x01" * 64).decode(),
        "keyid": None,
        "inspection_date": "2026-03-01",
    },
    "certificate.revoked": {"certificate_id": "cert-42", "lab_id": "lab-acme", "reason": "issued in error"},
    "listing.published": {
        "listing_id": "lst-9",
        "platform": "platform-1",
        "title_sha256": sha("Birkin 30 gold"),
        "price": "12500.00",
        "currency": "EUR",
    },
    "listing.closed": {"listing_id": "lst-9", "reason": "sold"},
    "custody.transferred": {
        "event": "received_for_consignment",
        "platform": "platform-1",
        "counterparty_commitment": sha("salt" + "seller-7"),
    },
    "model.registered": {
        "model_sha256": MODEL_SHA,
        "name": "authenticator",
        "version": "2026.03.1",
        "card_sha256": sha("card"),
        "metrics": {"auc": 0.97, "false_pass_rate": 0.00001, "n_test": 1200, "per_source": {"a": {"auc": 1.0}}},
    },
    "model.promoted": {
        "model_sha256": MODEL_SHA,
        "card_sha256": sha("card"),
        "evaluation_sha256": sha("evaluation"),
        "replaces": sha("older model"),
        "action": "promotion",
        "name": "authenticator",
        "version": "2026.03.2",
    },
    "model.shadowed": {
        "model_sha256": MODEL_SHA,
        "card_sha256": sha("card"),
        "evaluation_sha256": None,
        "active": True,
        "name": "authenticator",
        "version": "2026.03.2",
    },
    "photos.erased": {
        "assessment_id": "asm_01HV",
        "photo_sha256": [sha("p1")],
        "by": "platform-1",
        "reason": "seller request",
    },
    "log.item_map_started": {"map": "item-heads/v1"},
}

# One bad variant per type: (field, bad value) that the schema must refuse.
WRONG_VALUE: dict[str, list[tuple[str, Any]]] = {
    "item.registered": [("serial_commitment", "SN123"), ("platform", "has space"), ("brand", "")],
    "assessment.recorded": [
        ("decision", "probably_fake"),
        ("probability_authentic", 1.5),
        ("photo_sha256", []),
        ("thresholds", {"authentic_above": 0.1, "counterfeit_below": 0.9}),
        ("reasons", ["Not A Code"]),
    ],
    "certificate.attached": [
        ("outcome", "inconclusive"),
        ("inspection_date", "2026-02-30"),
        ("signature", "not base64!"),
    ],
    "certificate.revoked": [("reason", ""), ("lab_id", None)],
    "listing.published": [("price", 12500.0), ("price", "12,500"), ("currency", "eur"), ("price", "012")],
    "listing.closed": [("reason", "multi\nline")],
    "custody.transferred": [("event", "stolen"), ("counterparty_commitment", "seller-7")],
    "model.registered": [("model_sha256", MODEL_SHA.upper()), ("metrics", [1, 2])],
    "model.promoted": [("action", "demotion"), ("replaces", None), ("evaluation_sha256", "report.json")],
    "model.shadowed": [("active", "yes"), ("model_sha256", "abc")],
    "photos.erased": [("photo_sha256", []), ("photo_sha256", ["photo.jpg"]), ("by", "a b"), ("reason", "two\nlines")],
}

# Personal data and raw content have no place in the log: such fields are not in any schema.
PERSONAL_FIELDS = ["owner_email", "buyer_name", "serial_number", "photo", "address", "phone"]


def item_for(entry_type: str) -> str:
    if entry_type == "log.item_map_started":
        return "log:item-map"
    if entry_type in ("model.promoted", "model.shadowed"):
        return "model:lineage"
    return f"model:{MODEL_SHA}" if entry_type == "model.registered" else "item-7f3a"


def test_types_are_exactly_the_documented_ones() -> None:
    assert ENTRY_TYPES == set(VALID) == set(BODY_SCHEMAS)


@pytest.mark.parametrize("entry_type", sorted(VALID))
def test_valid_body_round_trips_canonically(entry_type: str) -> None:
    entry = make_entry(entry_type, item_for(entry_type), VALID[entry_type], PREV, WHEN)
    assert entry.v == ENTRY_VERSION
    assert entry.prev == base64.b64encode(PREV).decode()
    assert entry.time == "2026-03-14T15:09:26.535897Z"
    data = canonical_bytes(entry)
    whole: dict[str, Any] = {
        "v": entry.v,
        "type": entry.type,
        "item": entry.item,
        "prev": entry.prev,
        "time": entry.time,
    }
    assert data == rfc8785.dumps({**whole, "body": VALID[entry_type]})
    assert data == rfc8785.dumps(entry.to_dict())
    assert parse_entry(data) == entry
    assert canonical_bytes(parse_entry(data)) == data


@pytest.mark.parametrize("entry_type", sorted(VALID))
def test_extra_field_rejected(entry_type: str) -> None:
    body = {**VALID[entry_type], "note": "x"}
    with pytest.raises(EntryValidationError, match="note"):
        validate_body(entry_type, body)


@pytest.mark.parametrize("entry_type", sorted(VALID))
@pytest.mark.parametrize("field", PERSONAL_FIELDS)
def test_personal_data_fields_rejected(entry_type: str, field: str) -> None:
    with pytest.raises(EntryValidationError):
        make_entry(entry_type, item_for(entry_type), {**VALID[entry_type], field: "Jane Doe"}, None, WHEN)


@pytest.mark.parametrize("entry_type", sorted(VALID))
def test_missing_field_rejected(entry_type: str) -> None:
    for field in VALID[entry_type]:
        body = {k: v for k, v in VALID[entry_type].items() if k != field}
        with pytest.raises(EntryValidationError, match=field):
            validate_body(entry_type, body)


@pytest.mark.parametrize(
    ("entry_type", "field", "value"),
    [(t, f, v) for t, bad in WRONG_VALUE.items() for f, v in bad],
)
def test_wrong_values_rejected(entry_type: str, field: str, value: Any) -> None:
    with pytest.raises(EntryValidationError):
        validate_body(entry_type, {**VALID[entry_type], field: value})


def test_nested_extra_field_and_wrong_per_photo_rejected() -> None:
    body = copy.deepcopy(VALID["assessment.recorded"])
    body["per_photo"][0]["exif_gps"] = "48.85,2.35"
    with pytest.raises(EntryValidationError, match="exif_gps"):
        validate_body("assessment.recorded", body)
    body = copy.deepcopy(VALID["assessment.recorded"])
    body["thresholds"]["authentic_above"] = "0.9"
    with pytest.raises(EntryValidationError):
        validate_body("assessment.recorded", body)


def test_no_silent_coercion() -> None:
    # Strict schemas: a string is not a number, a bool is not a probability.
    for value in ("0.5", True):
        with pytest.raises(EntryValidationError):
            validate_body("assessment.recorded", {**VALID["assessment.recorded"], "probability_authentic": value})
    # An int is a valid JSON number for a float field, and canonicalises the same.
    body = validate_body("assessment.recorded", {**VALID["assessment.recorded"], "probability_authentic": 1})
    assert canonical_json(body) == rfc8785.dumps({**VALID["assessment.recorded"], "probability_authentic": 1})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_rejected(bad: float) -> None:
    with pytest.raises(EntryValidationError):
        make_entry(
            "assessment.recorded", "item-1", {**VALID["assessment.recorded"], "probability_authentic": bad}, None
        )
    metrics = {**VALID["model.registered"], "metrics": {"auc": bad}}
    with pytest.raises(EntryValidationError):
        make_entry("model.registered", f"model:{MODEL_SHA}", metrics, None)
    with pytest.raises(EntryValidationError):
        canonical_json({"x": [bad]})


def test_unrepresentable_integer_rejected() -> None:
    metrics = {**VALID["model.registered"], "metrics": {"n": 2**53}}
    entry = make_entry("model.registered", f"model:{MODEL_SHA}", metrics, None, WHEN)
    with pytest.raises(EntryValidationError):
        canonical_bytes(entry)


def test_unknown_type_rejected() -> None:
    with pytest.raises(EntryValidationError, match="unknown entry type"):
        make_entry("item.deleted", "item-1", {}, None)
    with pytest.raises(EntryValidationError):
        validate_body("item.registered", ["not", "an", "object"])  # type: ignore[arg-type]


def test_item_rules() -> None:
    body = VALID["model.registered"]
    with pytest.raises(EntryValidationError, match="model:"):
        make_entry("model.registered", "model:" + sha("other"), body, None)
    with pytest.raises(EntryValidationError, match="reserved"):
        make_entry("item.registered", f"model:{MODEL_SHA}", VALID["item.registered"], None)
    for item in ["", "has space", "x" * 129, "ü-item", "-leading-dash", "new\nline"]:
        with pytest.raises(EntryValidationError):
            make_entry("item.registered", item, VALID["item.registered"], None)


def test_time_and_prev_rules() -> None:
    body = VALID["listing.closed"]
    with pytest.raises(EntryValidationError, match="timezone"):
        make_entry("listing.closed", "i", body, None, datetime(2026, 1, 1))
    paris = timezone(timedelta(hours=1))
    entry = make_entry("listing.closed", "i", body, None, datetime(2026, 1, 1, 0, 30, tzinfo=paris))
    assert entry.time == "2025-12-31T23:30:00.000000Z"
    assert make_entry("listing.closed", "i", body, None).time.endswith("Z")
    for prev in (b"", bytes(31), bytes(33)):
        with pytest.raises(EntryValidationError, match="prev"):
            make_entry("listing.closed", "i", body, prev)
    assert make_entry("listing.closed", "i", body, PREV).prev_hash == PREV


def _good_bytes() -> bytes:
    return canonical_bytes(make_entry("assessment.recorded", "item-7f3a", VALID["assessment.recorded"], PREV, WHEN))


def _rewrite(**changes: Any) -> bytes:
    obj = json.loads(_good_bytes())
    obj.update(changes)
    return rfc8785.dumps(obj)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda d: d + b"\n", id="trailing-newline"),
        pytest.param(lambda d: b" " + d, id="leading-space"),
        pytest.param(lambda d: b"\xef\xbb\xbf" + d, id="bom"),
        pytest.param(lambda d: d.replace(b'","', b'", "', 1), id="space-after-comma"),
        pytest.param(lambda d: d.replace(b'"body":', b'"body" :'), id="space-before-colon"),
        pytest.param(lambda d: json.dumps(json.loads(d)).encode(), id="python-json-default"),
        pytest.param(lambda d: json.dumps(json.loads(d), sort_keys=True, indent=1).encode(), id="indented"),
        pytest.param(
            lambda d: json.dumps(dict(reversed(json.loads(d).items())), separators=(",", ":")).encode(),
            id="unsorted-keys",
        ),
        pytest.param(lambda d: d.replace(b"0.71", b"0.710"), id="trailing-zero"),
        pytest.param(lambda d: d.replace(b"0.71", b"7.1e-1"), id="exponent-form"),
        pytest.param(lambda d: d.replace(b'"v":1}', b'"v":1.0}'), id="version-as-float"),
        pytest.param(lambda d: d.replace(b'"inconclusive"', b'"inconclusiv\\u0065"'), id="needless-escape"),
        pytest.param(lambda d: d.replace(b'"v":1}', b'"v":1,"v":1}'), id="duplicate-key"),
        pytest.param(lambda d: d[:-1] + b',"extra":1}', id="extra-top-level-field"),
        pytest.param(lambda d: d.replace(b'"v":1}', b'"v":2}'), id="unknown-version"),
        pytest.param(lambda d: d.replace(b"assessment.recorded", b"assessment.deleted"), id="unknown-type"),
        pytest.param(lambda d: d.replace(b"0.71", b"NaN"), id="nan-literal"),
        pytest.param(lambda d: d.replace(b"0.71", b"Infinity"), id="infinity-literal"),
        pytest.param(lambda d: d.replace(b'"reasons":[]', b'"reasons":[],"gps":"1,2"'), id="extra-body-field"),
        pytest.param(lambda d: d[:-5], id="truncated"),
        pytest.param(lambda d: d.replace(b"item-7f3a", b"item-7f3\xff"), id="invalid-utf8"),
        pytest.param(lambda d: _rewrite(time="2026-03-14T15:09:26Z"), id="time-without-micros"),
        pytest.param(lambda d: _rewrite(time="2026-03-14T15:09:26.535897+00:00"), id="time-offset"),
        pytest.param(lambda d: _rewrite(time="2026-03-14 15:09:26.535897Z"), id="time-space"),
        pytest.param(lambda d: _rewrite(time="2026-02-30T15:09:26.535897Z"), id="time-impossible"),
        pytest.param(lambda d: _rewrite(prev=base64.b64encode(bytes(31)).decode()), id="prev-31-bytes"),
        pytest.param(lambda d: _rewrite(prev=PREV.hex()), id="prev-hex"),
        pytest.param(lambda d: _rewrite(prev=base64.urlsafe_b64encode(b"\xff" * 32).decode()), id="prev-urlsafe"),
        pytest.param(lambda d: _rewrite(item=""), id="empty-item"),
        pytest.param(lambda d: _rewrite(v=True), id="version-true"),
        pytest.param(lambda d: b"[]", id="array"),
        pytest.param(lambda d: b"", id="empty"),
    ],
)
def test_non_canonical_or_invalid_bytes_rejected(mangle: Any) -> None:
    good = _good_bytes()
    assert parse_entry(good).type == "assessment.recorded"
    bad = mangle(good)
    assert bad != good
    with pytest.raises(EntryValidationError):
        parse_entry(bad)


def test_non_canonical_prev_base64_rejected() -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    prev = base64.b64encode(PREV).decode()
    twin = prev[:-2] + alphabet[alphabet.index(prev[-2]) ^ 1] + "="
    assert base64.b64decode(twin) == PREV
    with pytest.raises(EntryValidationError, match="canonical"):
        parse_entry(_rewrite(prev=twin))


def test_entry_bytes_splice_equals_rfc8785_of_the_whole() -> None:
    for entry_type, body in VALID.items():
        body_bytes = canonical_json(validate_body(entry_type, body))
        for prev in (None, base64.b64encode(PREV).decode()):
            spliced = entry_bytes(entry_type, item_for(entry_type), prev, "2026-03-14T15:09:26.535897Z", body_bytes)
            whole: dict[str, Any] = {
                "v": 1,
                "type": entry_type,
                "item": item_for(entry_type),
                "prev": prev,
                "time": "2026-03-14T15:09:26.535897Z",
                "body": body,
            }
            assert spliced == rfc8785.dumps(whole)
            assert parse_entry(spliced).body == validate_body(entry_type, body)


def test_entry_is_immutable() -> None:
    entry = make_entry("listing.closed", "i", VALID["listing.closed"], None, WHEN)
    with pytest.raises(AttributeError):
        entry.prev = "x"  # type: ignore[misc]
    assert isinstance(entry, Entry)


# --- canonical_json agrees with the rfc8785 package on arbitrary JSON --------------------------

_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e-4, 9.999e-5, 1e-7, 1e16, 1e21, 1e22, 123456789012345.6, 5e-324, 1.7976931348623157e308]
)
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8) | st.sampled_from(
    ["\ue000", "\U0001f600", "\u2028", "\x7f", '"\\', "\x00\x1f\b\f\n\r\t"]
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _floats | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_canonical_json_matches_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_format_matches_rfc8785(f: float) -> None:
    assert ecmascript_number(f).encode() == rfc8785.dumps(f)


def test_number_format_edge_cases_match_rfc8785() -> None:
    cases = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1 + 0.2, 1 / 3]
    cases += [10.0**e for e in range(-325, 309)] + [1.5 * 10.0**e for e in range(-30, 30)]
    cases += [float(2**k) for k in range(0, 1024, 7)] + [float(2**53 - 1), float(2**53 + 2), 1e21 - 65536]
    cases += [-c for c in cases]
    for f in cases:
        assert ecmascript_number(f).encode() == rfc8785.dumps(f), f
    # The RFC 8785 appendix examples.
    assert ecmascript_number(333333333.33333329) == "333333333.3333333"
    assert ecmascript_number(1e30) == "1e+30"
    assert ecmascript_number(4.50) == "4.5"
    assert ecmascript_number(2e-3) == "0.002"
    assert ecmascript_number(0.000000000000000000000000001) == "1e-27"


def test_key_order_is_utf16_not_code_points() -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (0xE000 > 0xD83D) but before it by code point.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index("\ue000".encode())


@pytest.mark.parametrize(
    "value", [{"x": 1e-7}, {"x": 1.0}, {"x": 1e21}, {"x": -0.0}, {"x": 2**53 - 1}, ["\U0001f600", 1e16]]
)
def test_fallback_cases_match_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{"x": "\ud800"}, {1: "int key"}, {"x": 2**53}, {"x": b"bytes"}, {"x": {1, 2}}])
def test_values_without_canonical_form_rejected(value: Any) -> None:
    with pytest.raises(EntryValidationError):
        canonical_json(value)
