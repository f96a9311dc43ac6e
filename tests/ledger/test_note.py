"""C2SP signed notes: the Go reference vector, round trips and strict parsing."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authenticator.errors import CheckpointError
from authenticator.ledger.note import NoteSigner, NoteVerifier, key_hash, open_note, verifier_key_string

# The example of golang.org/x/mod/sumdb/note (its package docs and note_test.go): a signer
# key "PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)" and the note it signs. Ed25519 is
# deterministic, so a correct signer reproduces the published signature byte for byte.
GO_SIGNER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"


@pytest.fixture
def go_signer() -> NoteSigner:
    return NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(GO_SIGNER_SEED))


def _signer(name: str = "example.com/log") -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.generate())


def test_go_reference_vector(go_signer: NoteSigner) -> None:
    assert go_signer.verifier_key == GO_VKEY
    assert go_signer.sign(GO_TEXT) == GO_NOTE
    verifier = NoteVerifier.from_verifier_key(GO_VKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_hash == bytes.fromhex("c74f20a3")
    assert open_note(GO_NOTE, [verifier]) == (GO_TEXT, ["PeterNeumann"])
    assert open_note(GO_NOTE.encode(), [verifier]) == (GO_TEXT, ["PeterNeumann"])


def test_verifier_key_format() -> None:
    raw = bytes(range(32))
    vkey = verifier_key_string("example.com/foo", raw)
    name, hash_hex, key_b64 = vkey.split("+", 2)
    assert name == "example.com/foo"
    assert hash_hex == key_hash("example.com/foo", raw).hex() and len(hash_hex) == 8
    assert base64.b64decode(key_b64) == b"\x01" + raw
    assert NoteVerifier.from_verifier_key(vkey) == NoteVerifier("example.com/foo", raw)
    # Keys of other implementations parse too, including one whose base64 holds a "+".
    assert NoteVerifier.from_verifier_key(ENOCH_VKEY).name == "EnochRoot"
    plus = NoteVerifier.from_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
    assert plus.verifier_key == "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # empty name
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short hash
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not base64 / not 33 bytes
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # truncated base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",  # bad padding
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==",  # 34 bytes
    ],
)
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        NoteVerifier.from_verifier_key(vkey)


def test_every_mangling_of_a_verifier_key_rejected() -> None:
    # Like the Go tests: every proper substring and every single-byte change is refused.
    for i in range(len(GO_VKEY) + 1):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(CheckpointError):
                    NoteVerifier.from_verifier_key(GO_VKEY[i:j])
    for i, ch in enumerate(GO_VKEY):
        mangled = GO_VKEY[:i] + chr(ord(ch) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(CheckpointError):
            NoteVerifier.from_verifier_key(mangled)


def test_round_trip_and_multiple_signers() -> None:
    a, b = _signer("a.example/log"), _signer("b.example/witness")
    text = "line one\n\nline three after an empty line\n"
    note = a.sign(text)
    note_ab = note + b.signature_line(text)
    assert open_note(note, [a.verifier]) == (text, ["a.example/log"])
    assert open_note(note_ab, [a.verifier, b.verifier]) == (text, ["a.example/log", "b.example/witness"])
    # Signatures of unknown keys are ignored, whatever their position.
    assert open_note(note_ab, [b.verifier]) == (text, ["b.example/witness"])
    # A known key signs once: a repeated line is refused (as in the Go reference); an unknown
    # key's repeated line is ignored like the rest of its lines.
    with pytest.raises(CheckpointError, match="more than once"):
        open_note(note_ab + b.signature_line(text), [b.verifier])
    assert open_note(note_ab + b.signature_line(text), [a.verifier])[1] == ["a.example/log"]


def test_unknown_keys_only_rejected() -> None:
    a, stranger = _signer(), _signer()
    with pytest.raises(CheckpointError, match="no verified signature"):
        open_note(a.sign("hello\n"), [stranger.verifier])
    # Same name, different key: still unknown (name AND key hash must match).
    with pytest.raises(CheckpointError, match="no verified signature"):
        open_note(a.sign("hello\n"), [NoteVerifier(a.name, stranger.verifier.public_key_raw)])


def test_failing_known_signature_rejects_note_even_with_a_good_one() -> None:
    a, b = _signer("a.example/log"), _signer("b.example/witness")
    text = "hello\n"
    bad_b = b.signature_line("other text\n")  # b's line, but over different text
    note = a.sign(text) + bad_b
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(note, [a.verifier, b.verifier])
    # Nobody asked about b: its bad line is an unknown key's line and is ignored.
    assert open_note(note, [a.verifier]) == (text, ["a.example/log"])


def _good() -> tuple[NoteSigner, str]:
    s = _signer("example.com/log")
    return s, s.sign("example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda n: n.replace("\n\n", "\n"), id="no-blank-line"),
        pytest.param(lambda n: n[:-1], id="no-final-newline"),
        pytest.param(lambda n: n + "\n", id="trailing-blank-line"),
        pytest.param(lambda n: n.replace("— ", "- "), id="hyphen-not-em-dash"),
        pytest.param(lambda n: n.replace("— ", "—"), id="no-space-after-dash"),
        pytest.param(lambda n: n.replace("— example.com/log ", "— example.com/log  "), id="double-space"),
        pytest.param(lambda n: n[:-1] + " \n", id="trailing-space"),
        pytest.param(lambda n: n[:-1] + "\r\n", id="crlf"),
        pytest.param(lambda n: n.replace("=\n\n", "=\r\n\n"), id="control-char-in-text"),
        pytest.param(lambda n: n[: n.rindex(" ") + 1] + n[n.rindex(" ") + 1 : -2] + "\n", id="unpadded-base64"),
        pytest.param(lambda n: n.replace("— example.com/log ", "— example.com/log AAAA"), id="garbage-base64"),
        pytest.param(lambda n: n[: n.rindex(" ") + 1] + "AAAA\n", id="short-signature"),
        pytest.param(lambda n: n.split("\n\n")[0] + "\n\n", id="no-signature-lines"),
        pytest.param(lambda n: n.replace("\n\n", "\n\nnot a signature\n"), id="junk-line"),
    ],
)
def test_malformed_notes_rejected(mangle: object) -> None:
    signer, note = _good()
    assert open_note(note, [signer.verifier])[1] == ["example.com/log"]
    assert callable(mangle)
    bad = mangle(note)
    assert bad != note
    with pytest.raises(CheckpointError):
        open_note(bad, [signer.verifier])


def test_non_canonical_signature_base64_rejected() -> None:
    signer, note = _good()
    head, b64 = note[:-1].rsplit(" ", 1)
    raw = base64.b64decode(b64)
    assert len(raw) == 68  # 68 bytes: base64 ends in one "=", the last char carries 2 spare bits
    last = b64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1]  # same decoded bytes, a non-zero spare bit
    non_canonical = b64[:-2] + twin + "="
    assert base64.b64decode(non_canonical) == raw
    with pytest.raises(CheckpointError, match="canonical"):
        open_note(f"{head} {non_canonical}\n", [signer.verifier])


def test_invalid_utf8_and_oversize_rejected() -> None:
    signer, note = _good()
    with pytest.raises(CheckpointError, match="UTF-8"):
        open_note(b"\xff" + note.encode(), [signer.verifier])
    with pytest.raises(CheckpointError, match="too large"):
        open_note("x\n" * 600_000 + "\n" + note.split("\n\n")[1], [signer.verifier])


def test_signer_refuses_bad_text() -> None:
    s = _signer()
    for text in ["no newline", "tab\there\n", "nul\x00\n"]:
        with pytest.raises(CheckpointError):
            s.sign(text)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name", "new\nline"])
def test_bad_key_names_rejected(name: str) -> None:
    with pytest.raises(CheckpointError):
        NoteVerifier(name, bytes(32))
    with pytest.raises(CheckpointError):
        NoteSigner(name, Ed25519PrivateKey.generate())


def test_verify_wrong_sizes() -> None:
    v = _signer().verifier
    assert v.verify(b"x", b"\x00" * 63) is False
    assert v.verify(b"x", b"\x00" * 64) is False
    with pytest.raises(CheckpointError):
        NoteVerifier("x", bytes(31))


_P = 2**255 - 19


@pytest.mark.parametrize(
    ("raw", "why", "error"),
    [
        ((1).to_bytes(32, "little"), "identity (order 1)", "small order"),
        ((_P - 1).to_bytes(32, "little"), "y = -1 (order 2)", "small order"),
        (bytes(32), "y = 0 (order 4)", "small order"),
        (bytes(31) + b"\x80", "y = 0, other x (order 4)", "small order"),
        (bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), "order 8", "small order"),
        (bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "order 8", "small order"),
        ((_P + 1).to_bytes(32, "little"), "non-canonical y >= p (identity again)", "canonical"),
        ((1).to_bytes(32, "little")[:31] + b"\x80", "x = 0 with the sign bit set", "canonical"),
        ((2).to_bytes(32, "little"), "y = 2 is not on the curve", "curve point"),
    ],
)
def test_weak_or_invalid_public_keys_refused(raw: bytes, why: str, error: str) -> None:
    # With a small-order key anyone can make signatures that verify; the Go reference refuses
    # such keys too. A verifier key string carrying one is refused the same way.
    with pytest.raises(CheckpointError, match=error):
        NoteVerifier("example.com/log", raw)
    vkey = "example.com/log+" + key_hash("example.com/log", raw).hex() + "+" + base64.b64encode(b"\x01" + raw).decode()
    with pytest.raises(CheckpointError, match=error):
        NoteVerifier.from_verifier_key(vkey)


def test_real_keys_pass_the_point_checks() -> None:
    for _ in range(50):
        NoteVerifier.from_public_key("k", Ed25519PrivateKey.generate().public_key())
