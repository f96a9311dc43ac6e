"""Interoperability: a real entry of the public Rekor v2 staging log, checked end to end.

The bundle and key come from ../shared/testdata/rekor-v2 (see its README). Everything here
was produced by other software, so passing proves we follow RFC 9162 and C2SP, not just
ourselves. Every single-bit change to the body, a proof hash, the root or the signature
must be caught.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from authenticator.errors import CheckpointError, ProofError
from authenticator.ledger.checkpoint import Checkpoint, verify_checkpoint
from authenticator.ledger.merkle import hash_leaf, root_from_inclusion_proof, verify_inclusion
from authenticator.ledger.note import NoteVerifier, key_hash, open_note
from tests.conftest import SHARED

DATA = SHARED / "testdata" / "rekor-v2"
ORIGIN = "log2025-alpha1.rekor.sigstage.dev"


def _flips(data: bytes) -> Iterator[bytes]:
    """``data`` with each single bit flipped in turn."""
    buf = bytearray(data)
    for i in range(len(buf) * 8):
        buf[i // 8] ^= 1 << (i % 8)
        yield bytes(buf)
        buf[i // 8] ^= 1 << (i % 8)


@pytest.fixture(scope="module")
def tlog_entry() -> dict[str, Any]:
    bundle = json.loads((DATA / "entry.sigstore.json").read_text())
    entry: dict[str, Any] = bundle["verificationMaterial"]["tlogEntries"][0]
    return entry


@pytest.fixture(scope="module")
def log_key_raw() -> bytes:
    spki = base64.b64decode((DATA / "log-public-key.spki.b64").read_text().strip(), validate=True)
    key = load_der_public_key(spki)
    assert isinstance(key, Ed25519PublicKey)
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture(scope="module")
def verifier(log_key_raw: bytes) -> NoteVerifier:
    return NoteVerifier(ORIGIN, log_key_raw)


def _proof(entry: dict[str, Any]) -> tuple[int, int, bytes, list[bytes], bytes]:
    p = entry["inclusionProof"]
    body = base64.b64decode(entry["canonicalizedBody"], validate=True)
    hashes = [base64.b64decode(h, validate=True) for h in p["hashes"]]
    return int(p["logIndex"]), int(p["treeSize"]), body, hashes, base64.b64decode(p["rootHash"], validate=True)


def test_leaf_hash_and_inclusion(tlog_entry: dict[str, Any]) -> None:
    index, size, body, hashes, root = _proof(tlog_entry)
    assert (index, size, len(hashes)) == (645, 646, 4)
    assert int(tlog_entry["logIndex"]) == index
    leaf = hash_leaf(body)
    assert leaf == hashlib.sha256(b"\x00" + body).digest()
    assert root_from_inclusion_proof(index, size, leaf, hashes) == root
    verify_inclusion(index, size, leaf, hashes, root)


def test_key_hash_and_log_id(tlog_entry: dict[str, Any], log_key_raw: bytes, verifier: NoteVerifier) -> None:
    # Rekor v2's log id is the full SHA-256 whose first 4 bytes are the note key hash.
    log_id = base64.b64decode(tlog_entry["logId"]["keyId"])
    assert hashlib.sha256(ORIGIN.encode() + b"\n\x01" + log_key_raw).digest() == log_id
    assert key_hash(ORIGIN, log_key_raw) == log_id[:4]
    sig_line = tlog_entry["inclusionProof"]["checkpoint"]["envelope"].rstrip("\n").rsplit("\n", 1)[1]
    assert base64.b64decode(sig_line.split(" ")[2])[:4] == verifier.key_hash
    vkey = verifier.verifier_key
    assert vkey == f"{ORIGIN}+{log_id[:4].hex()}+" + base64.b64encode(b"\x01" + log_key_raw).decode()
    assert NoteVerifier.from_verifier_key(vkey) == verifier


def test_checkpoint_verifies(tlog_entry: dict[str, Any], verifier: NoteVerifier) -> None:
    envelope = tlog_entry["inclusionProof"]["checkpoint"]["envelope"]
    index, size, body, hashes, root = _proof(tlog_entry)
    text, names = open_note(envelope, [verifier])
    assert names == [ORIGIN]
    assert text == f"{ORIGIN}\n{size}\n{tlog_entry['inclusionProof']['rootHash']}\n"
    cp = verify_checkpoint(envelope, verifier.verifier_key, origin=ORIGIN)
    assert cp == Checkpoint(ORIGIN, size, root)
    assert cp.body() == text
    # The whole chain: body -> leaf -> root named by the signed checkpoint.
    verify_inclusion(index, cp.size, hash_leaf(body), hashes, cp.root_hash)


def test_wrong_origin_or_key_rejected(tlog_entry: dict[str, Any], verifier: NoteVerifier) -> None:
    envelope = tlog_entry["inclusionProof"]["checkpoint"]["envelope"]
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(envelope, verifier.verifier_key, origin="log2025-alpha2.rekor.sigstage.dev")
    other = NoteVerifier.from_public_key(ORIGIN, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CheckpointError):
        verify_checkpoint(envelope, other.verifier_key)


def test_every_body_bit_flip_fails(tlog_entry: dict[str, Any]) -> None:
    index, size, body, hashes, root = _proof(tlog_entry)
    count = 0
    for flipped in _flips(body):
        with pytest.raises(ProofError):
            verify_inclusion(index, size, hash_leaf(flipped), hashes, root)
        count += 1
    assert count == len(body) * 8 > 8000


def test_every_proof_hash_bit_flip_fails(tlog_entry: dict[str, Any]) -> None:
    index, size, body, hashes, root = _proof(tlog_entry)
    leaf = hash_leaf(body)
    for pos in range(len(hashes)):
        for flipped in _flips(hashes[pos]):
            bad = [*hashes[:pos], flipped, *hashes[pos + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaf, bad, root)


def test_every_root_bit_flip_fails(tlog_entry: dict[str, Any], verifier: NoteVerifier) -> None:
    index, size, body, hashes, root = _proof(tlog_entry)
    leaf = hash_leaf(body)
    envelope = tlog_entry["inclusionProof"]["checkpoint"]["envelope"]
    root_b64 = tlog_entry["inclusionProof"]["rootHash"]
    assert envelope.count(root_b64) == 1
    for flipped in _flips(root):
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, hashes, flipped)
        # The same root, changed inside the signed checkpoint: the signature no longer holds.
        forged = envelope.replace(root_b64, base64.b64encode(flipped).decode())
        with pytest.raises(CheckpointError):
            verify_checkpoint(forged, verifier.verifier_key, origin=ORIGIN)


def test_every_signature_bit_flip_fails(tlog_entry: dict[str, Any], verifier: NoteVerifier) -> None:
    envelope = tlog_entry["inclusionProof"]["checkpoint"]["envelope"]
    text, sig_line = envelope[:-1].rsplit("\n", 1)
    dash, name, sig_b64 = sig_line.split(" ")
    raw = base64.b64decode(sig_b64)
    assert len(raw) == 4 + 64
    count = 0
    for flipped in _flips(raw):
        forged = f"{text}\n{dash} {name} {base64.b64encode(flipped).decode()}\n"
        # A flip in the 64 signature bytes fails verification; one in the 4 key-hash bytes makes
        # the line an unknown key's, which leaves no verified signature. Both reject the note.
        with pytest.raises(CheckpointError):
            verify_checkpoint(forged, verifier.verifier_key)
        count += 1
    assert count == 68 * 8


def test_every_bit_flip_of_the_signed_text_fails(tlog_entry: dict[str, Any], verifier: NoteVerifier) -> None:
    envelope: str = tlog_entry["inclusionProof"]["checkpoint"]["envelope"]
    raw = envelope.encode()
    text_len = len(envelope.split("\n\n")[0]) + 1
    buf = bytearray(raw)
    for i in range(text_len * 8):
        buf[i // 8] ^= 1 << (i % 8)
        with pytest.raises(CheckpointError):
            verify_checkpoint(bytes(buf), verifier.verifier_key)
        buf[i // 8] ^= 1 << (i % 8)
    assert verify_checkpoint(bytes(buf), verifier.verifier_key).size == 646
