"""API keys never reach the server's log: a real ``authenticator serve`` and its captured output.

A client that puts its key in a URL, literally or with any of its characters %-encoded, must
not find it in the access log, the error log or a traceback; and the log must stay well formed
(uvicorn's access formatter unpacks the record's arguments: a redaction that dropped them made
every such request print a ``--- Logging error ---`` traceback with the record, key included).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import httpx
import pytest
from uvicorn.logging import AccessFormatter, DefaultFormatter

from api.logredact import RedactKeys, install, redact, redact_record
from authenticator.config import Settings
from tests.api_helpers import bearer
from tests.live_server import bootstrap_admin, raw_http, server_env, start_server

KEY = "key_0123456789abcdef.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCd"
SECRET = KEY.split(".", 1)[1]


def encode_all(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


def encodings(key: str) -> dict[str, str]:
    """The key as a client might put it in a URL: literal, or any of its characters %-encoded."""
    key_id, secret = key.split(".", 1)
    return {
        "plain": key,
        "dot": key.replace(".", "%2E"),
        "dot-lower": key.replace(".", "%2e"),
        "underscore": key.replace("_", "%5F", 1),
        "k": "%6B" + key[1:],
        "k-lower": "%6b" + key[1:],
        "id-digit": key_id[:6] + "%" + f"{ord(key_id[6]):02X}" + key[7:],
        "secret-chars": key_id + "." + secret[:5] + encode_all(secret[5:10]) + secret[10:],
        "all": encode_all(key),
        "double": key.replace("_", "%255F", 1).replace(".", "%252E"),
        "upper-prefix": "KEY" + key[3:],
    }


def secret_pieces(secret: str) -> list[str]:
    """Parts of the secret that must not be in a redacted text, literal or %-encoded."""
    return [secret, secret[:20], secret[-20:], encode_all(secret[:10])]


# --- the redaction itself ---------------------------------------------------------------------


@pytest.mark.parametrize("form", list(encodings(KEY)))
def test_redact_every_encoding(form: str) -> None:
    sent = encodings(KEY)[form]
    line = f'127.0.0.1:5 - "GET /v1/items/x?api_key={sent}&b=1 HTTP/1.1" 200'
    out = redact(line)
    for piece in secret_pieces(SECRET):
        assert piece not in out, (form, out)
    assert sent not in out
    assert ".<redacted>" in out and out.endswith('&b=1 HTTP/1.1" 200'), out
    assert out.startswith('127.0.0.1:5 - "GET /v1/items/x?api_key=')


def test_redact_leaves_other_text_alone() -> None:
    for text in ["", "GET /healthz", "key_0123 short", "100%", "%zz%", "a%2Eb", "key_0123456789abcdeg.xyz" * 3]:
        assert redact(text) == text
    two = f"a={KEY}&b={encodings(KEY)['underscore']}"
    assert redact(two) == "a=key_0123456789abcdef.<redacted>&b=key_0123456789abcdef.<redacted>"


def _record(msg: object, args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_access_record_keeps_its_shape_for_uvicorns_formatter() -> None:
    """uvicorn's AccessFormatter unpacks five arguments: the redacted record must still have them."""
    for sent in encodings(KEY).values():
        record = _record('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", f"/v1/items?api_key={sent}", "1.1", 200))
        RedactKeys().filter(record)
        assert isinstance(record.args, tuple) and len(record.args) == 5
        line = AccessFormatter(fmt='%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
        assert SECRET not in line and sent not in line and "key_0123456789abcdef.<redacted>" in line, line


def test_error_records_tracebacks_and_objects_are_redacted() -> None:
    try:
        raise ValueError(f"bad key {encodings(KEY)['dot']}")
    except ValueError:
        exc_info = sys.exc_info()

    class Shows:
        def __str__(self) -> str:
            return f"<obj {KEY}>"

        def __repr__(self) -> str:
            return f"Shows({KEY!r})"

    record = _record("failed for %s and %r (%d)", (Shows(), Shows(), 3), exc_info)
    redact_record(record)
    text = DefaultFormatter(fmt="%(levelprefix)s %(message)s").format(record)
    assert "ValueError" in text and "(3)" in text
    for piece in secret_pieces(SECRET):
        assert piece not in text, text
    mapping = _record("k=%(k)s", ({"k": KEY},))
    redact_record(mapping)
    assert mapping.getMessage() == "k=key_0123456789abcdef.<redacted>"
    raw = _record(b"bytes " + KEY.encode(), None)
    redact_record(raw)
    assert SECRET not in str(raw.msg)


def test_every_record_of_the_process_is_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    install()
    install()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").warning("called %s", f"/x?key={encodings(KEY)['underscore']}")
    assert SECRET not in caplog.text and ".<redacted>" in caplog.text


# --- a real server ----------------------------------------------------------------------------


def test_keys_in_urls_never_reach_a_real_servers_log(api_tiny_weights: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", weights_dir=api_tiny_weights)
    env = server_env(settings)
    admin = bootstrap_admin(env)
    server = start_server(env, tmp_path / "server.log", log_level="info")
    sent: list[str] = []
    try:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            made = http.post("/v1/keys", json={"role": "platform", "name": "Leaky"}, headers=bearer(admin))
            assert made.status_code == 201, made.text
            key = str(made.json()["api_key"])
            for name, form in encodings(key).items():
                sent.append(form)
                # A query parameter (the raw query reaches the access log as sent) ...
                http.get(f"/v1/items/nope?api_key={form}")
                # ... and a path segment (uvicorn logs the decoded, re-quoted path).
                http.get(f"/v1/items/{form}")
                # An error answer, from the app and from the protocol, with the key in the URL.
                http.post(f"/v1/items?api_key={form}", content=b"{", headers={"Content-Type": "application/json"})
                raw_http(server.base, f"GET /v1/items?api_key={form} HTTP/1.1\r\nHost: x\r\nX: \x7f\r\n\r\n".encode())
                assert name
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()
    log = server.log_text()
    key_id, secret = key.split(".", 1)
    assert "GET /v1/items/nope?api_key=" in log and "GET /healthz" in log  # the access log was written
    assert log.count(f"{key_id}.<redacted>") >= 3 * len(sent), log[-3000:]
    assert "Logging error" not in log and "Traceback" not in log and "TypeError" not in log, log[-3000:]
    for piece in secret_pieces(secret):
        assert piece not in log, f"{piece!r} in the log"
    for form in sent:
        assert form not in log, f"{form!r} in the log"
    assert not re.search(re.escape(secret[:12]), log, re.IGNORECASE)
