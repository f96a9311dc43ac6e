"""Lab tooling, DSSE envelopes, the badge rule and the SQL photo-reuse index."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from authenticator.db import create_ledger_engine
from authenticator.dsse import PAYLOAD_TYPE, pae, parse_envelope, sign_envelope, verify_envelope
from authenticator.errors import InvalidInput, SignatureError
from authenticator.ledger.entries import canonical_json
from authenticator.services.badges import CertificateFact, VerdictFact, derive_badge
from authenticator.store.migrate import migrate
from authenticator.store.photo_index import SqlPhotoReuseIndex
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema

CLI = str(Path(sys.executable).parent / "authenticator")


def test_pae_matches_the_dsse_spec() -> None:
    # The example of the DSSE protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_round_trip_and_tampering() -> None:
    key = Ed25519PrivateKey.generate()
    env = sign_envelope({"item_id": "itm_1", "outcome": "authentic"}, key)
    assert env["payloadType"] == PAYLOAD_TYPE
    parsed = parse_envelope(json.dumps(env).encode())
    verify_envelope(parsed, key.public_key())
    with pytest.raises(SignatureError):
        verify_envelope(parsed, Ed25519PrivateKey.generate().public_key())
    bad = dict(env, payload=base64.b64encode(b'{"item_id":"itm_2","outcome":"authentic"}').decode())
    with pytest.raises(SignatureError):
        verify_envelope(parse_envelope(json.dumps(bad).encode()), key.public_key())
    with pytest.raises(InvalidInput):
        verify_envelope(parse_envelope(json.dumps(dict(env, payloadType="text/plain")).encode()), key.public_key())
    for broken in (b"[]", b'{"payload": "!!", "payloadType": "x", "signatures": []}', b'{"payloadType": "x"}'):
        with pytest.raises(InvalidInput):
            parse_envelope(broken)


def test_lab_keygen_and_sign(tmp_path: Path) -> None:
    key_file = tmp_path / "lab.key"
    res = subprocess.run([CLI, "lab", "keygen", "--out", str(key_file)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    info = json.loads(res.stdout)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(info["public_key"]))
    again = subprocess.run([CLI, "lab", "keygen", "--out", str(key_file)], capture_output=True, text=True, timeout=60)
    assert again.returncode != 0  # never overwrites a key
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"lab photo")
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF report")
    out = tmp_path / "env.json"
    res = subprocess.run(
        [
            CLI,
            "lab",
            "sign",
            "itm_0123",
            "--outcome",
            "authentic",
            "--method",
            "UV, loupe",
            "--key",
            str(key_file),
            "--lab-id",
            "lab_42",
            "--photos",
            str(photo),
            "--report",
            str(report),
            "--date",
            "2026-11-20",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    env = parse_envelope(out.read_bytes())
    verify_envelope(env, public)
    payload = json.loads(env.payload)
    assert canonical_json(payload) == env.payload
    assert payload["item_id"] == "itm_0123" and payload["lab_id"] == "lab_42" and payload["outcome"] == "authentic"
    assert payload["photos"] == [hashlib.sha256(b"lab photo").hexdigest()]
    assert payload["report_sha256"] == hashlib.sha256(b"%PDF report").hexdigest()


def _v(decision: str, i: int) -> VerdictFact:
    return VerdictFact(f"a{i}", decision, i)


def _c(outcome: str, i: int, revoked: int | None = None) -> CertificateFact:
    return CertificateFact(f"c{i}", outcome, i, revoked)


@pytest.mark.parametrize(
    ("verdicts", "certs", "level"),
    [
        ([], [], "inconclusive"),
        ([_v("inconclusive", 1)], [], "inconclusive"),
        ([_v("authentic", 1)], [], "ai_verified"),
        ([_v("authentic", 1), _v("counterfeit", 2)], [], "warning"),
        # Other photos that look authentic do not clear a counterfeit verdict: only a lab does.
        ([_v("counterfeit", 1), _v("authentic", 2)], [], "warning"),
        ([_v("counterfeit", 1), _v("inconclusive", 2), _v("authentic", 3)], [], "warning"),
        ([_v("inconclusive", 1), _v("authentic", 2)], [], "ai_verified"),
        ([_v("inconclusive", 1)], [_c("authentic", 2)], "lab_certified"),
        ([_v("counterfeit", 1)], [_c("authentic", 2)], "lab_certified"),
        ([_v("authentic", 1)], [_c("counterfeit", 2)], "warning"),
        ([_v("authentic", 1)], [_c("authentic", 2, revoked=3)], "warning"),
        # A lab that revokes and then issues a corrected certificate: history, not a warning.
        ([], [_c("authentic", 2, revoked=3), _c("authentic", 4)], "lab_certified"),
        ([_v("counterfeit", 1)], [_c("authentic", 2, revoked=3), _c("authentic", 4)], "lab_certified"),
        # Only a certificate attached after the revocation replaces it.
        ([], [_c("authentic", 2), _c("authentic", 3, revoked=4)], "warning"),
        ([], [_c("authentic", 2, revoked=5), _c("authentic", 4)], "warning"),
        # A lab's counterfeit finding in force outranks everything.
        ([], [_c("authentic", 2, revoked=3), _c("authentic", 4), _c("counterfeit", 5)], "warning"),
    ],
)
def test_badge_rule(verdicts: list[VerdictFact], certs: list[CertificateFact], level: str) -> None:
    assert derive_badge(verdicts, certs).level == level


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_ledger_engine(f"sqlite:///{tmp_path / 'idx.db'}")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    schema, url = create_scratch_schema("t_api")
    eng = create_ledger_engine(url)
    try:
        migrate(eng)
        yield eng
    finally:
        eng.dispose()
        drop_scratch_schema(schema)


def test_photo_index_finds_near_hashes(engine: Engine) -> None:
    index = SqlPhotoReuseIndex(engine, max_distance=8)
    base = 0xF0E1D2C3B4A59687
    index.add(base, "itm_a", "aa" * 32)
    index.add(base, "itm_a", "aa" * 32)  # idempotent
    index.add(0x0F1E2D3C4B5A6978, "itm_b", "bb" * 32)
    index.add((1 << 63) | 5, "itm_c", "cc" * 32)  # top bit set: stored as a signed BIGINT
    for bits in ([], [0], [0, 17], [3, 30, 63]):
        probe = base
        for b in bits:
            probe ^= 1 << b
        matches = index.lookup(probe, exclude_item="itm_z")
        assert [(m.item_id, m.distance) for m in matches] == [("itm_a", len(bits))]
    assert index.lookup(base, exclude_item="itm_a") == []
    assert [m.item_id for m in index.lookup((1 << 63) | 4, exclude_item=None)] == ["itm_c"]
    # Eight flipped bits, two in every 16-bit band: no band survives intact, yet the photo is
    # within the threshold and must be found (exact band equality missed this case).
    spread = base ^ sum(1 << (16 * band + off) for band in range(4) for off in (1, 9))
    assert [(m.item_id, m.distance) for m in index.lookup(spread, exclude_item=None)] == [("itm_a", 8)]
    # Twelve flipped bits: over the threshold, not a reuse.
    far = base ^ sum(1 << b for b in range(0, 64, 5))
    assert index.lookup(far, exclude_item=None) == []
