"""C2SP tlog-cosignature: Ed25519 timestamped cosignatures (authenticator/ledger/cosignature.py).

The vectors are real: a checkpoint of the public static-CT log arche2025h1 (transparency.dev's
staging log) as cosigned by four witnesses of the public witness network, with those
witnesses' published verifier keys (type 0x04). A verifier that accepts them and refuses any
altered copy implements the spec's message, key id and timestamp layout as the witnesses do.
The rest are round trips, the spec's exact signed message, and every way to break a line.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authenticator.errors import CheckpointError
from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from authenticator.ledger.cosignature import (
    COSIGNATURE_SIZE,
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_key_hash,
    cosigned_message,
    verify_cosignatures,
)
from authenticator.ledger.note import NoteVerifier, open_note
from tests.ledger_samples import ABSENT_WITNESS, REAL_LOG_KEY, REAL_NOTE, REAL_TIMESTAMP, REAL_WITNESSES


def _verifiers(keys: list[str]) -> list[CosignatureVerifier]:
    return [CosignatureVerifier.from_verifier_key(k) for k in keys]


def test_real_witnesses_cosignatures_verify() -> None:
    found = verify_cosignatures(REAL_NOTE, _verifiers(REAL_WITNESSES))
    assert [c.verifier_key for c in found] == REAL_WITNESSES
    assert {c.timestamp for c in found} == {REAL_TIMESTAMP}
    assert all(c.line in REAL_NOTE for c in found)
    # The log's own signature (type 0x01) still opens the note; the cosignature lines are ignored.
    assert verify_checkpoint(REAL_NOTE, REAL_LOG_KEY).size == 1432088532
    # A cosignature verifier plugs into the signed-note opener like any other key.
    assert open_note(REAL_NOTE, _verifiers(REAL_WITNESSES))[1] == [
        "transparency.dev/DEV:witness-little-garden",
        "witness1.smartit.nu/witness1",
        "remora.n621.de",
        "witness.stagemole.eu",
    ]


def test_a_witness_that_did_not_cosign_is_simply_absent() -> None:
    assert verify_cosignatures(REAL_NOTE, _verifiers([ABSENT_WITNESS])) == []
    found = verify_cosignatures(REAL_NOTE, _verifiers([ABSENT_WITNESS, REAL_WITNESSES[2]]))
    assert [c.name for c in found] == ["remora.n621.de"]


@pytest.mark.parametrize(
    "change",
    [
        ("\n1432088532\n", "\n1432088533\n"),  # another size
        ("U7WM79", "U7WM7A"),  # another root
        ("arche2025h1.staging.ct.transparency.dev\n1432", "arche2025h1.staging.ct.transparency.de\n1432"),  # origin
    ],
)
def test_real_cosignatures_refuse_an_altered_checkpoint(change: tuple[str, str]) -> None:
    old, new = change
    altered = REAL_NOTE.replace(old, new, 1)
    for key in REAL_WITNESSES:
        with pytest.raises(CheckpointError, match="does not verify"):
            verify_cosignatures(altered, _verifiers([key]))


def test_real_cosignature_with_another_timestamp_fails() -> None:
    line = next(line for line in REAL_NOTE.splitlines() if line.startswith("— remora.n621.de "))
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1  # the last byte of the timestamp: the signed "time" line no longer matches
    forged = REAL_NOTE.replace(line, f"— remora.n621.de {base64.b64encode(bytes(raw)).decode()}")
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignatures(forged, _verifiers([REAL_WITNESSES[2]]))


def test_real_witness_keys_parse_with_their_key_ids() -> None:
    for vkey in REAL_WITNESSES:
        v = CosignatureVerifier.from_verifier_key(vkey)
        name, key_id, key_b64 = vkey.split("+", 2)
        raw = base64.b64decode(key_b64)
        assert raw[0] == 0x04 and v.public_key_raw == raw[1:]
        assert v.key_hash.hex() == key_id == hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
        assert v.verifier_key == vkey


def test_a_log_key_is_not_a_witness_key_and_back() -> None:
    # A type 0x01 key (signed-note's plain Ed25519) is refused as a witness key, and a witness
    # key (0x04) is refused as a log key: the two signature types never stand in for each other.
    with pytest.raises(CheckpointError, match="type 0x04"):
        CosignatureVerifier.from_verifier_key(REAL_LOG_KEY)
    with pytest.raises(CheckpointError, match="only Ed25519, 0x01"):
        NoteVerifier.from_verifier_key(REAL_WITNESSES[2])


@pytest.mark.parametrize(
    "vkey",
    [
        "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # wrong key id
        "remora.n621.dE+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # another name
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw",  # not base64
        "remora.n621.de+da77ade7",
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2AA==",  # too long
        "rem ora+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    ],
)
def test_malformed_witness_keys_are_refused(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        CosignatureVerifier.from_verifier_key(vkey)


# --- the spec's message and round trips ----------------------------------------------------------


def test_signed_message_is_the_specs() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosigned_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    with pytest.raises(CheckpointError):
        cosigned_message(body, 2**63)
    with pytest.raises(CheckpointError):
        cosigned_message(body, -1)
    with pytest.raises(CheckpointError):
        cosigned_message("not a checkpoint\n", 1)


@pytest.fixture
def log() -> CheckpointSigner:
    return CheckpointSigner("log.example/a", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


@pytest.fixture
def witness() -> CosignatureSigner:
    return CosignatureSigner("witness.example/w1", Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))


def _signed(log: CheckpointSigner, size: int = 7, ext: tuple[str, ...] = ("item-map " + "A" * 43 + "=",)) -> str:
    return log.sign(Checkpoint(log.origin, size, hashlib.sha256(str(size).encode()).digest(), ext))


def test_round_trip_and_layout(log: CheckpointSigner, witness: CosignatureSigner) -> None:
    note = _signed(log)
    text = note.split("\n\n")[0] + "\n"
    line = witness.cosign(text, 1_700_000_000)
    name, blob = line.rstrip("\n").removeprefix("— ").split(" ")
    raw = base64.b64decode(blob)
    assert name == "witness.example/w1" and len(raw) == COSIGNATURE_SIZE == 4 + 8 + 64
    assert raw[:4] == cosignature_key_hash(name, witness.verifier.public_key_raw)
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000
    witness.verifier._public_key.verify(raw[12:], cosigned_message(text, 1_700_000_000))
    [found] = verify_cosignatures(note + line, [witness.verifier])
    assert (found.name, found.timestamp, found.line, found.verifier_key) == (
        name,
        1_700_000_000,
        line,
        witness.verifier_key,
    )
    # The cosigned note still verifies with the log key alone, and parses as a checkpoint.
    assert verify_checkpoint(note + line, log.verifier_key).size == 7
    # Default timestamp: now.
    assert verify_cosignatures(note + witness.cosign(text), [witness.verifier])[0].timestamp > 1_700_000_000


def test_cosignature_covers_extension_lines(log: CheckpointSigner, witness: CosignatureSigner) -> None:
    note = _signed(log)
    text = note.split("\n\n")[0] + "\n"
    cosigned = note + witness.cosign(text, 5)
    altered = cosigned.replace("item-map AAAA", "item-map AAAB")
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignatures(altered, [witness.verifier])


def test_a_bad_or_repeated_line_of_a_known_witness_rejects_the_note(
    log: CheckpointSigner, witness: CosignatureSigner
) -> None:
    note = _signed(log)
    text = note.split("\n\n")[0] + "\n"
    line = witness.cosign(text, 5)
    with pytest.raises(CheckpointError, match="more than once"):
        verify_cosignatures(note + line + witness.cosign(text, 6), [witness.verifier])
    other = CosignatureSigner("witness.example/w1", Ed25519PrivateKey.generate())
    # Same name, another key: another key id, so it is someone else's line and is ignored.
    assert verify_cosignatures(note + other.cosign(text, 5), [witness.verifier]) == []
    # A cosignature of another checkpoint, moved onto this one.
    moved = witness.cosign(_signed(log, 8).split("\n\n")[0] + "\n", 5)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignatures(note + moved, [witness.verifier])
    # A plain signed-note signature (no timestamp) under the witness's key id.
    raw = base64.b64decode(line.split(" ")[2])
    short = "— witness.example/w1 " + base64.b64encode(raw[:4] + raw[12:]).decode() + "\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignatures(note + short, [witness.verifier])


def test_the_log_key_cannot_cosign_as_a_witness(log: CheckpointSigner) -> None:
    """The log's 0x01 signature line, renamed, never counts as a witness's cosignature."""
    note = _signed(log)
    priv = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    as_witness = CosignatureSigner(log.origin, priv)
    # Same name and key, but the type byte differs, so the key ids differ: the log's own line is
    # not taken for a cosignature, and a cosignature by that key is not the log's signature.
    assert as_witness.verifier.key_hash != log.verifier.key_hash
    assert verify_cosignatures(note, [as_witness.verifier]) == []
