"""Strict inputs, pure parts (issue 11, point 6): the strict JSON loader, the free-text rule,
the certificate payload typed exactly as docs/certificates.md says, DSSE envelopes, the CLI.

The HTTP side (every JSON body, every free-text field) is in ``tests/api/test_strict_inputs_api.py``.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from typer.testing import CliRunner

from authenticator.cli.keys import keys_app
from authenticator.cli.lab import lab_app
from authenticator.dsse import PAYLOAD_TYPE, envelope_payload, parse_envelope, sign_envelope
from authenticator.errors import BadRequest, InvalidInput
from authenticator.ledger.entries import canonical_json
from authenticator.services.certificate_payload import check_inspection_date, check_payload, parse_payload
from authenticator.strict_json import DuplicateKeyError, StrictJSONError, loads
from authenticator.text import BLANK_CHARACTERS, FREE_TEXT_PATTERN, check_free_text, forbidden_character
from tests.text_samples import FORBIDDEN

#: Text that must stay accepted: accents, scripts written right to left, CJK, emoji sequences
#: with a zero-width joiner, a no-break space, punctuation.
ACCEPTED = [
    "Hermès",
    "Birkin 30 — Himalaya",
    "ساعة رولكس",
    "シャネル",
    "👩\u200d🔧 repair",
    "No.\u00a05",
    "A/B #1 (2024)",
]

TODAY = date(2026, 11, 27)


def good_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "v": 1,
        "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
        "lab_id": "lab_0a1b2c3d4e5f60718293a4b5",
        "outcome": "authentic",
        "inspection_date": "2026-11-20",
        "method": "physical inspection: stitching, hardware, date stamp, UV",
        "photos": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
        "report_sha256": None,
    }
    payload.update(changes)
    return payload


# --- the strict JSON loader ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (b'{"a": 1, "a": 1}', "a"),
        (b'{"payload": "x", "payloadType": "t", "payload": "y"}', "payload"),
        (b'{"signatures": [{"sig": "a", "keyid": "k", "sig": "b"}]}', "sig"),
        (b'[[{"deep": {"x": 1, "x": 2}}]]', "x"),
        (b'{"a": 1, "\\u0061": 2}', "a"),  # the same key, once escaped
        ('{"é": 1, "\\u00e9": 2}'.encode(), "é"),
    ],
)
def test_duplicate_keys_are_refused_at_any_depth(text: bytes, key: str) -> None:
    with pytest.raises(DuplicateKeyError) as caught:
        loads(text)
    assert caught.value.key == key
    assert json.dumps(key) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        b"NaN",
        b'{"x": Infinity}',
        b"[-Infinity]",
        b"[1e999]",
        b"[-1e400]",
        b'"\\ud800"',
        b'{"\\udc00": 1}',
        b'["ok", ["\\ud83d"]]',
        b"\xef\xbb\xbf{}",
        '{"a": 1}'.encode("utf-16"),
        b'{"a": "\xff"}',
        b"{not json",
        b"",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_what_is_not_strict_json_is_refused(text: bytes) -> None:
    with pytest.raises(StrictJSONError):
        loads(text)


def test_strict_json_reads_what_json_reads() -> None:
    text = '{"a": [1, -0.5, 1e10, 123456789012345678901234567890, true, null], "b": {"c": "😀\\ud83d\\ude00é"}}'
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)
    assert loads(b'{"a": {"x": 1}, "b": {"x": 1}}') == {"a": {"x": 1}, "b": {"x": 1}}  # same key, other objects


# --- free text -----------------------------------------------------------------------------------


@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_free_text_refuses_controls_bidi_and_separators(char: str) -> None:
    for value in (f"Birkin{char}30", char, f"{char}x", f"x{char}"):
        assert forbidden_character(value) == char
        with pytest.raises(InvalidInput) as caught:
            check_free_text(value, "brand")
        assert "brand" in caught.value.message and f"U+{ord(char):04X}" in caught.value.message


def test_free_text_refuses_lone_surrogates() -> None:
    with pytest.raises(InvalidInput):
        check_free_text("x\ud800", "model")


@pytest.mark.parametrize("value", ACCEPTED)
def test_free_text_accepts_ordinary_text(value: str) -> None:
    assert forbidden_character(value) is None
    assert check_free_text(value, "brand") == value


def test_the_published_pattern_is_the_same_rule() -> None:
    """The OpenAPI schema carries FREE_TEXT_PATTERN: it must accept exactly what the check accepts
    (Python's re here; jsonschema-rs, which schemathesis uses, too where it is installed)."""
    engines = [lambda s: re.search(FREE_TEXT_PATTERN, s) is not None and not s.endswith("\n")]
    try:
        import jsonschema_rs

        engines.append(jsonschema_rs.validator_for({"type": "string", "pattern": FREE_TEXT_PATTERN}).is_valid)
    except ImportError:
        pass
    samples = [*ACCEPTED, *FORBIDDEN.values(), *BLANK_CHARACTERS, " \u3000 ", "a\ufeff", "x\u202ey", "ok\n", ""]
    samples += [f"a{c}b" for c in FORBIDDEN.values()]
    for value in samples:
        accepted = forbidden_character(value) is None and not all(ch in BLANK_CHARACTERS for ch in value)
        assert [engine(value) for engine in engines] == [accepted] * len(engines), repr(value)


# --- the certificate payload ----------------------------------------------------------------------


def test_the_documented_example_payload_passes() -> None:
    check_payload(good_payload(), today=TODAY)
    check_payload(good_payload(notes="re-stitched handle, original leather", report_sha256="ab" * 32), today=TODAY)
    check_payload(good_payload(notes=None), today=TODAY)
    payload = {k: v for k, v in good_payload().items() if k not in ("v", "report_sha256")}  # optional fields
    check_payload(payload, today=TODAY)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"v": True}, "v"),  # True == 1 in Python: refused all the same
        ({"v": 1.0}, "v"),
        ({"v": "1"}, "v"),
        ({"v": None}, "v"),
        ({"v": 2}, "v"),
        ({"notes": {"text": "hello"}}, "notes"),
        ({"notes": ["hello"]}, "notes"),
        ({"notes": 5}, "notes"),
        ({"notes": "x" * 2001}, "notes"),
        ({"notes": "line one\nline two"}, "notes"),
        ({"notes": "see \u202egpj.exe"}, "notes"),
        ({"method": "UV\u2028loupe"}, "method"),
        ({"method": "UV\x85loupe"}, "method"),
        ({"method": ""}, "method"),
        ({"method": "   "}, "method"),
        ({"method": "x" * 501}, "method"),
        ({"method": ["UV"]}, "method"),
        ({"inspection_date": "9999-12-31"}, "inspection_date"),
        ({"inspection_date": "1900-01-01"}, "inspection_date"),
        ({"inspection_date": "1989-12-31"}, "inspection_date"),
        ({"inspection_date": "2026-11-29"}, "inspection_date"),  # two days after "today"
        ({"inspection_date": "2026-02-30"}, "inspection_date"),
        ({"inspection_date": "2026-1-05"}, "inspection_date"),
        ({"inspection_date": "20261120"}, "inspection_date"),
        ({"inspection_date": "2026-W47-5"}, "inspection_date"),
        ({"inspection_date": "２０２６-11-20"}, "inspection_date"),
        ({"inspection_date": 20261120}, "inspection_date"),
        ({"outcome": "inconclusive"}, "outcome"),
        ({"outcome": ["authentic"]}, "outcome"),
        ({"item_id": 7}, "item_id"),
        ({"item_id": "itm_\u202e1"}, "item_id"),
        ({"lab_id": {"id": "lab_1"}}, "lab_id"),
        ({"photos": ["AB" * 32]}, "photos"),
        ({"photos": "ab" * 32}, "photos"),
        ({"photos": ["ab" * 32] * 65}, "photos"),
        ({"report_sha256": True}, "report_sha256"),
    ],
)
def test_payload_types_are_exact(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_payload(good_payload(**changes), today=TODAY)
    assert field in caught.value.message


def test_payload_fields_are_exactly_the_documented_ones() -> None:
    with pytest.raises(InvalidInput, match="unknown"):
        check_payload(good_payload(extra=1), today=TODAY)
    with pytest.raises(InvalidInput, match="lacks"):
        check_payload({k: v for k, v in good_payload().items() if k != "method"}, today=TODAY)
    with pytest.raises(InvalidInput):
        check_payload(["not", "an", "object"], today=TODAY)  # type: ignore[arg-type]


def test_inspection_date_window() -> None:
    assert check_inspection_date("1990-01-01", today=TODAY) == date(1990, 1, 1)
    assert check_inspection_date("2026-11-28", today=TODAY) == date(2026, 11, 28)  # a lab east of UTC
    for refused in ("1989-12-31", "2026-11-29", "9999-12-31", "0001-01-01"):
        with pytest.raises(InvalidInput, match="inspection_date"):
            check_inspection_date(refused, today=TODAY)
    check_inspection_date(date.today().isoformat())  # the default window ends after today (UTC)


def test_parse_payload_reads_canonical_strict_json_only() -> None:
    raw = canonical_json(good_payload())
    assert parse_payload(raw, today=TODAY) == good_payload()
    duplicated = raw[:-1] + b',"outcome":"counterfeit"}'
    with pytest.raises(InvalidInput, match='duplicate JSON object key "outcome"'):
        parse_payload(duplicated, today=TODAY)
    with pytest.raises(InvalidInput, match="canonical"):
        parse_payload(json.dumps(good_payload(), indent=1).encode(), today=TODAY)
    with pytest.raises(InvalidInput):
        parse_payload(raw.replace(b'"v":1', b'"v":NaN'), today=TODAY)
    with pytest.raises(InvalidInput, match="v must be the integer 1"):
        parse_payload(canonical_json(good_payload(v=True)), today=TODAY)


# --- DSSE envelopes ---------------------------------------------------------------------------------

KEY = Ed25519PrivateKey.generate()


def _envelope_with(*members: tuple[str, Any]) -> bytes:
    """An envelope's JSON text with exactly these members, in order (repeats included)."""
    return ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in members) + "}").encode()


def test_an_envelope_naming_a_member_twice_is_refused() -> None:
    signed = sign_envelope(good_payload(), KEY)
    other = base64.b64encode(canonical_json(good_payload(outcome="counterfeit"))).decode()
    sig = signed["signatures"][0]
    for members in (
        [("payload", other), ("payloadType", PAYLOAD_TYPE), ("signatures", [sig]), ("payload", signed["payload"])],
        [("payload", signed["payload"]), ("payloadType", PAYLOAD_TYPE), ("payloadType", "text/plain"),
         ("signatures", [sig])],
    ):  # fmt: skip
        data = _envelope_with(*members)
        with pytest.raises(BadRequest, match="duplicate JSON object key"):
            parse_envelope(data)
        with pytest.raises(ValueError):
            envelope_payload(data)
    twice = _envelope_with(("keyid", sig["keyid"]), ("sig", sig["sig"]), ("sig", "AAAA")).decode()
    data = f'{{"payload": "{signed["payload"]}", "payloadType": "{PAYLOAD_TYPE}", "signatures": [{twice}]}}'
    with pytest.raises(BadRequest, match='"sig"'):
        parse_envelope(data.encode())
    assert parse_envelope(json.dumps(signed).encode()).payload == canonical_json(good_payload())


def test_a_signed_payload_naming_a_member_twice_is_refused() -> None:
    raw = canonical_json(good_payload())[:-1] + b',"outcome":"counterfeit"}'
    env = json.dumps({"payload": base64.b64encode(raw).decode(), "payloadType": PAYLOAD_TYPE, "signatures": [
        {"sig": base64.b64encode(KEY.sign(raw)).decode()}]}).encode()  # fmt: skip
    with pytest.raises(InvalidInput, match='duplicate JSON object key "outcome"'):
        parse_envelope(env)
    with pytest.raises(ValueError):
        envelope_payload(env)


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Acme\u202eResale", "Acme\nResale", "Acme\u2028", "Acme\x85", "   "])
def test_keys_create_refuses_a_name_that_is_not_one_line_of_text(name: str) -> None:
    res = CliRunner().invoke(keys_app, ["create", "--role", "platform", "--name", name, "--db", "sqlite://"])
    assert res.exit_code == 2, res.output
    assert "name" in res.output


@pytest.mark.parametrize(
    "args",
    [
        ["--date", "9999-12-31"],
        ["--date", "1900-01-01"],
        ["--method", "UV\u202eloupe"],
        ["--method", "UV\nloupe"],
    ],
)
def test_lab_sign_refuses_what_the_service_would_refuse(tmp_path: Path, args: list[str]) -> None:
    key_file = tmp_path / "lab.key"
    key_file.write_bytes(KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    opts = {"--method": "UV, loupe", "--date": "2026-11-20", **dict(zip(args[::2], args[1::2], strict=True))}
    cmd = ["sign", "itm_0123", "--outcome", "authentic", "--key", str(key_file), "--lab-id", "lab_42"]
    out = tmp_path / "env.json"
    res = CliRunner().invoke(lab_app, [*cmd, *[x for kv in opts.items() for x in kv], "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert not out.exists()


# --- the middleware, as plain ASGI ---------------------------------------------------------------------


def _run_middleware(content_type: bytes, messages: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """What the app behind StrictJSONMiddleware received, and what went back to the client."""
    import asyncio

    from api.strict_json import StrictJSONMiddleware

    seen: list[Any] = []
    sent: list[Any] = []
    incoming = list(messages)

    async def receive() -> Any:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    scope = {"type": "http", "method": "POST", "path": "/v1/items", "headers": [(b"content-type", content_type)]}
    asyncio.run(StrictJSONMiddleware(app)(scope, receive, send))
    return seen, sent


def test_the_middleware_replays_a_strict_body_whole() -> None:
    chunks = [{"type": "http.request", "body": b'{"a": ', "more_body": True}, {"type": "http.request", "body": b"1}"}]
    seen, sent = _run_middleware(b"application/json", chunks)
    assert [m.get("body") for m in seen] == [b'{"a": 1}'] and not sent
    seen, sent = _run_middleware(b"text/plain", [{"type": "http.request", "body": b'{"a": 1, "a": 2}'}])
    assert [m.get("body") for m in seen] == [b'{"a": 1, "a": 2}'] and not sent  # not JSON: not its business


def test_the_middleware_answers_400_and_never_passes_a_truncated_body() -> None:
    seen, sent = _run_middleware(b"application/json", [{"type": "http.request", "body": b'{"a": 1, "a": 2}'}])
    assert not seen and sent[0]["status"] == 400 and '"a"' in json.loads(sent[1]["body"])["detail"]
    seen, sent = _run_middleware(b"application/json", [{"type": "http.request", "body": b'{"a": 1', "more_body": True}])
    assert seen == [{"type": "http.disconnect"}] and not sent
