"""Inputs refused with a message a person can act on: the preview's ``category`` (and views
without one), free text that is only invisible characters, a JSON number too long for Python,
and ``trace verify`` given a key that is not a verifier key (a usage error, exit 2)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from authenticator.cli import app as cli_app
from authenticator.config import Settings
from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.cosignature import CosignatureSigner
from authenticator.text import BLANK_CHARACTERS, is_blank
from tests.api_helpers import Actors, bearer, certificate_envelope, new_item, photo_files, real_photos

JSON = {"Content-Type": "application/json"}


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    return body


# --- the preview's category -------------------------------------------------------------------------


def _preview(client: TestClient, actors: Actors, data: dict[str, Any]) -> httpx.Response:
    files = photo_files(real_photos(1))
    return client.post("/v1/assessments/preview", files=files, data=data, headers=bearer(actors.platform))


@pytest.mark.parametrize("category", ["shoe", "Sneaker", "BAG", "sneakers", " watch", "car"])
def test_a_preview_with_an_unknown_category_is_refused(client: TestClient, actors: Actors, category: str) -> None:
    """As ``POST /v1/items`` refuses it: the three ids, in lower case, nothing else (no 200 that
    silently ignored the category, with or without views)."""
    for data in ({"category": category}, {"category": category, "views": ["front"]}):
        detail = _problem(_preview(client, actors, data), 422)["detail"]
        assert "category" in detail and "bag, watch or sneaker" in detail, detail
        assert repr(category) in detail, detail
    # The item registration treats the same word the same way.
    r = client.post(
        "/v1/items", json={"category": category, "brand": "Acme", "model": "Tote"}, headers=bearer(actors.platform)
    )
    assert r.status_code == 422, r.text


def test_a_preview_with_views_but_no_category_says_to_send_one(client: TestClient, actors: Actors) -> None:
    for data in ({"views": ["sole"]}, {"views": ["sole"], "category": ""}):
        detail = _problem(_preview(client, actors, data), 422)["detail"]
        assert "send 'category' (bag, watch or sneaker)" in detail, detail
        assert "None" not in detail, detail
    # The known categories still work, with and without views.
    assert _preview(client, actors, {"category": "sneaker", "views": ["sole"]}).status_code == 200
    assert _preview(client, actors, {"category": "watch"}).status_code == 200
    assert _preview(client, actors, {}).status_code == 200


# --- free text that is only invisible characters ------------------------------------------------------

INVISIBLE = [
    "\u200b",  # ZERO WIDTH SPACE
    "\u200c\u200d",  # ZERO WIDTH NON-JOINER, ZERO WIDTH JOINER
    "\u2060",  # WORD JOINER
    "\ufeff\u200b ",
    "\u2800",  # BRAILLE PATTERN BLANK
    "\u3164",  # HANGUL FILLER
    "\u115f\u1160",  # HANGUL CHOSEONG / JUNGSEONG FILLER
    "\uffa0",  # HALFWIDTH HANGUL FILLER
    "\u180e",  # MONGOLIAN VOWEL SEPARATOR
    "\u00ad",  # SOFT HYPHEN (a format character)
    "\U000e0041\U000e007f",  # tag characters
    " \u3000\u200b\u00a0",
]


@pytest.mark.parametrize("text", INVISIBLE, ids=lambda t: "-".join(f"{ord(c):04X}" for c in t))
def test_free_text_of_only_invisible_characters_is_blank(client: TestClient, actors: Actors, text: str) -> None:
    r = client.post(
        "/v1/items", json={"category": "bag", "brand": text, "model": "Tote"}, headers=bearer(actors.platform)
    )
    body = _problem(r, 422)
    assert body["errors"][0]["loc"] == ["body", "brand"], body
    assert "must not be blank" in json.dumps(body), body


@pytest.mark.parametrize("text", ["👩\u200d👩\u200d👧", "\u200bHermès", "Birkin\u00a030\u2060", "\u00adx"])
def test_visible_text_with_invisible_characters_is_still_accepted(
    client: TestClient, actors: Actors, text: str
) -> None:
    r = client.post(
        "/v1/items", json={"category": "bag", "brand": text, "model": "Tote"}, headers=bearer(actors.platform)
    )
    assert r.status_code == 201, r.text
    assert r.json()["brand"] == text


def test_every_format_character_and_space_separator_counts_as_blank() -> None:
    """Blank follows Unicode: every ``Cf`` and ``Zs`` character this Python knows is in the set."""
    missing = [
        f"U+{c:04X}"
        for c in range(0x110000)
        if unicodedata.category(chr(c)) in ("Cf", "Zs") and chr(c) not in BLANK_CHARACTERS
    ]
    assert missing == []
    assert is_blank("") and is_blank("\u200b\u3164 \U000e0020") and not is_blank("\u200bx")


def test_a_certificate_method_of_only_invisible_characters_is_blank(client: TestClient, actors: Actors) -> None:
    """docs/certificates.md: ``method`` is "not blank" free text, the same rule as the API's fields."""
    item = new_item(client, actors.platform)
    url = f"/v1/items/{item}/certificates"
    for method in ("\u200b", "\u2800 \u3164"):
        envelope = certificate_envelope(actors.lab_key, item, actors.lab_id, method=method)
        detail = _problem(client.post(url, json=envelope, headers=bearer(actors.lab)), 422)["detail"]
        assert "method must not be blank" in detail, detail
    envelope = certificate_envelope(actors.lab_key, item, actors.lab_id, method="UV\u200b lamp")
    assert client.post(url, json=envelope, headers=bearer(actors.lab)).status_code == 201


# --- a number too long for Python's int ---------------------------------------------------------------


def test_a_number_with_too_many_digits_is_a_plain_400(client: TestClient, actors: Actors) -> None:
    body = '{"category": "bag", "brand": "Acme", "model": "Tote", "n": ' + "9" * 5000 + "}"
    problem = _problem(client.post("/v1/items", content=body, headers={**JSON, **bearer(actors.platform)}), 400)
    detail = problem["detail"]
    assert "a number has too many digits (5000; at most 4300)" in detail, detail
    assert "sys." not in detail and "set_int_max_str_digits" not in detail, detail
    # A long number that Python reads stays an ordinary validation problem (an unknown field here).
    body = '{"category": "bag", "brand": "Acme", "model": "Tote", "n": -' + "9" * 4000 + "}"
    assert client.post("/v1/items", content=body, headers={**JSON, **bearer(actors.platform)}).status_code == 422


# --- trace verify: a key that is not a key is a usage error ---------------------------------------------


@pytest.fixture(scope="module")
def saved_trace(client: TestClient, actors: Actors, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(a trace saved as JSON, the log's verifier key)."""
    item = new_item(client, actors.platform)
    trace = client.get(f"/v1/items/{item}/trace")
    assert trace.status_code == 200, trace.text
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    path.write_text(trace.text)
    return str(path), str(client.get("/v1/log/key").json()["verifier_key"])


def _one_error_line(res: Any) -> str:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    assert res.stdout == "" and "Traceback" not in res.stderr, (res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return str(lines[0])


@pytest.mark.parametrize(
    "key",
    [
        "garbage",
        "",
        "log+zz+AQ==",
        "authenticator.local/log+01020304+AQ" + "A" * 42 + "=",  # a key hash that is not this key's
        CosignatureSigner(
            "witness.example/w", Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        ).verifier_key,  # not a log key
    ],
)
def test_trace_verify_with_an_unusable_key_is_a_usage_error(saved_trace: tuple[str, str], key: str) -> None:
    path, _ = saved_trace
    res = CliRunner().invoke(cli_app, ["trace", "verify", path, "--key", key])
    assert _one_error_line(res).startswith("error: --key "), res.stderr


def test_trace_verify_with_an_unusable_witness_key_is_a_usage_error(saved_trace: tuple[str, str]) -> None:
    path, log_key = saved_trace
    res = CliRunner().invoke(cli_app, ["trace", "verify", path, "--key", log_key, "--witness", "garbage"])
    assert _one_error_line(res).startswith("error: --witness "), res.stderr


def test_trace_verify_with_another_logs_key_is_a_verification_failure(
    saved_trace: tuple[str, str], tmp_path: Path
) -> None:
    """A key that is a verifier key but not this log's: the checks ran and failed (exit 1)."""
    path, log_key = saved_trace
    assert CliRunner().invoke(cli_app, ["trace", "verify", path, "--key", log_key]).exit_code == 0
    origin = log_key.split("+")[0]
    other = CheckpointSigner.load_or_create(tmp_path / "other.key", origin).verifier_key
    res = CliRunner().invoke(cli_app, ["trace", "verify", path, "--key", other])
    assert res.exit_code == 1, (res.stdout, res.stderr)
    assert "FAIL" in res.stdout and "trace NOT verified" in res.stdout


def test_trace_verify_with_a_checkpoint_file_that_is_no_checkpoint_is_a_usage_error(
    saved_trace: tuple[str, str], tmp_path: Path
) -> None:
    path, log_key = saved_trace
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes about this item\n")
    res = CliRunner().invoke(cli_app, ["trace", "verify", path, "--key", log_key, "--checkpoint", str(notes)])
    assert _one_error_line(res).startswith("error: --checkpoint "), res.stderr


def test_ledger_verify_with_an_unusable_key_is_a_usage_error(client: TestClient, api_settings: Settings) -> None:
    db = api_settings.resolved_database_url
    env = {"AUTHENTICATOR_DATA_DIR": str(api_settings.data_dir)}  # the deployment's, not ./data
    res = CliRunner(env=env).invoke(cli_app, ["ledger", "verify", "--db", db, "--key", "garbage"])
    assert _one_error_line(res).startswith("error: --key "), res.stderr
    log_key = str(client.get("/v1/log/key").json()["verifier_key"])
    ok = CliRunner(env=env).invoke(cli_app, ["ledger", "verify", "--db", db, "--key", log_key, "--hashes-only"])
    assert ok.exit_code == 0, (ok.stdout, ok.stderr)
