"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
``— <key name> <base64(4-byte key hash || 64-byte signature)>``. The signature covers the
text exactly as sent (final newline included, blank line excluded). Parsing follows
golang.org/x/mod/sumdb/note (the reference implementation) and is stricter where that one is
lenient: base64 must be canonical. Any malformed input raises
:class:`~authenticator.errors.CheckpointError`; nothing here returns ``False`` for a bad note.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authenticator.encoding import b64decode_strict
from authenticator.errors import CheckpointError

ALG_ED25519 = 0x01
"""Signature-type byte of Ed25519 keys in C2SP verifier keys and key hashes."""
ED25519_KEY_SIZE = 32
ED25519_SIG_SIZE = 64
KEY_HASH_SIZE = 4
SIG_PREFIX = "\u2014 "
"""Every signature line starts with an em dash (U+2014) and a space."""
MAX_NOTE_BYTES = 1_000_000
MAX_SIGNATURES = 100
"""Same caps as the Go reference: a note is small, and a flood of lines is an attack."""

# Text: no ASCII control characters other than newline (the Go reference's rule).
_BAD_TEXT_CHAR = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


def is_valid_key_name(name: str) -> bool:
    """A key name is non-empty UTF-8 without whitespace and without ``+``."""
    if not name or "+" in name:
        return False
    if any(ch.isspace() for ch in name) or _BAD_TEXT_CHAR.search(name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Curve25519 in Edwards form (RFC 8032 §5.1), for the public-key sanity checks below.
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _ed25519_point(encoded: bytes) -> tuple[int, int] | None:
    """Decode a point (RFC 8032 §5.1.3); None unless the encoding is canonical and on the curve."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x2 = u * pow(v, -1, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if x * x % _P != x2:
        x = x * _SQRT_M1 % _P
        if x * x % _P != x2:
            return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y


def _ed25519_double(pt: tuple[int, int]) -> tuple[int, int]:
    x, y = pt
    t = _D * x * x * y * y % _P
    return (2 * x * y * pow(1 + t, -1, _P) % _P, (y * y + x * x) * pow(1 - t, -1, _P) % _P)


def _check_ed25519_public_key(raw: bytes) -> None:
    """Refuse keys that are not canonical curve points or have small order, as the Go reference
    does: with a small-order key, signatures that verify can be made without the private key."""
    pt = _ed25519_point(raw)
    if pt is None:
        raise CheckpointError("the Ed25519 public key is not a canonical curve point")
    for _ in range(3):
        pt = _ed25519_double(pt)
    if pt == (0, 1):
        raise CheckpointError("the Ed25519 public key has small order")


def _check_key(name: str, public_key_raw: bytes) -> None:
    if not is_valid_key_name(name):
        raise CheckpointError(f"invalid key name {name!r}: non-empty, no whitespace, no '+'")
    if not isinstance(public_key_raw, bytes) or len(public_key_raw) != ED25519_KEY_SIZE:
        raise CheckpointError(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes")
    _check_ed25519_public_key(public_key_raw)


def key_hash(name: str, public_key_raw: bytes) -> bytes:
    """First 4 bytes of SHA-256(name || "\\n" || 0x01 || key): the key's id on signature lines."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key_raw).digest()
    return digest[:KEY_HASH_SIZE]


def verifier_key_string(name: str, public_key_raw: bytes) -> str:
    """C2SP verifier key: ``<name>+<8 hex key hash>+<base64(0x01 || key)>``."""
    _check_key(name, public_key_raw)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + public_key_raw).decode("ascii")
    return f"{name}+{key_hash(name, public_key_raw).hex()}+{encoded}"


def split_verifier_key(vkey: object) -> tuple[str, bytes, bytes]:
    """``<name>+<hex key hash>+<base64 key>`` as (name, key hash, key bytes with its type byte);
    the caller checks the type byte, the length and that the key hash matches."""
    if not isinstance(vkey, str):
        raise CheckpointError("a verifier key is a string")
    parts = vkey.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise CheckpointError("a verifier key has the form <name>+<hex key hash>+<base64 key>")
    name, hash_hex, key_b64 = parts
    if not is_valid_key_name(name):
        raise CheckpointError(f"invalid key name {name!r} in verifier key")
    if not _HEX8.fullmatch(hash_hex):
        raise CheckpointError("the key hash of a verifier key is 8 hex digits")
    key = b64decode_strict(key_b64, "verifier key", canonical=True, error=CheckpointError)
    return name, bytes.fromhex(hash_hex), key


@dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key_raw: bytes

    def __post_init__(self) -> None:
        _check_key(self.name, self.public_key_raw)

    @classmethod
    def from_verifier_key(cls, vkey: str) -> NoteVerifier:
        """Parse a C2SP verifier key; the key hash in it must match the name and key."""
        name, key_hash, key = split_verifier_key(vkey)
        if not key or key[0] != ALG_ED25519:
            raise CheckpointError("unsupported verifier key type (only Ed25519, 0x01)")
        if len(key) != 1 + ED25519_KEY_SIZE:
            raise CheckpointError(f"an Ed25519 verifier key is {1 + ED25519_KEY_SIZE} bytes")
        verifier = cls(name, key[1:])
        if verifier.key_hash != key_hash:
            raise CheckpointError("the key hash of the verifier key does not match its name and key")
        return verifier

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        return cls(name, public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    @cached_property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key_raw)

    @cached_property
    def _public_key(self) -> Ed25519PublicKey:
        try:
            return Ed25519PublicKey.from_public_bytes(self.public_key_raw)
        except ValueError as exc:
            raise CheckpointError("invalid Ed25519 public key") from exc

    @property
    def verifier_key(self) -> str:
        return verifier_key_string(self.name, self.public_key_raw)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (64 bytes, no key hash) is this key's Ed25519 signature of ``message``."""
        if len(signature) != ED25519_SIG_SIZE:
            return False
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise CheckpointError("note text must end with a newline")
    if _BAD_TEXT_CHAR.search(text):
        raise CheckpointError("note text must not contain control characters other than newline")


class NoteSigner:
    """Signs notes with one named Ed25519 private key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise CheckpointError("a note signer needs an Ed25519 private key")
        self.name = name
        self._private_key = private_key
        self.verifier = NoteVerifier.from_public_key(name, private_key.public_key())
        self.verifier_key = self.verifier.verifier_key
        self._line_prefix = f"{SIG_PREFIX}{name} "
        self._key_hash = self.verifier.key_hash

    def signature_line(self, text: str) -> str:
        """The ``— name base64`` line (with its newline) for ``text``; the text is not re-checked."""
        sig = self._private_key.sign(text.encode("utf-8"))
        return self._line_prefix + base64.b64encode(self._key_hash + sig).decode("ascii") + "\n"

    def sign(self, text: str) -> str:
        """The full signed note: ``text``, a blank line, one signature line."""
        _check_text(text)
        return text + "\n" + self.signature_line(text)


class Verifier(Protocol):
    """What :func:`open_note` needs of a key: its name, its 4-byte key hash and a check of one
    signature (the bytes after the key hash). :class:`NoteVerifier` is one; the timestamped
    witness cosignatures of :mod:`authenticator.ledger.cosignature` are another."""

    @property
    def name(self) -> str: ...

    @property
    def key_hash(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


def note_signatures(note: str | bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text (final newline included) and its signature lines as
    ``(key name, decoded base64)`` pairs, checking the form only: nothing is verified here."""
    if isinstance(note, bytes | bytearray):
        if len(note) > MAX_NOTE_BYTES:
            raise CheckpointError("note is too large")
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("note is not valid UTF-8") from exc
    if not isinstance(note, str):
        raise CheckpointError("a note is text")
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointError("note is too large")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointError("note is not valid UTF-8") from exc

    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before its signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    if _BAD_TEXT_CHAR.search(text):
        raise CheckpointError("note text must not contain control characters other than newline")
    if not sigs or not sigs.endswith("\n"):
        raise CheckpointError("note signatures must be non-empty and end with a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError("note has too many signatures")
    out: list[tuple[str, bytes]] = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise CheckpointError("malformed signature line: it must start with an em dash and a space")
        fields = line[len(SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise CheckpointError("malformed signature line: want '— <name> <base64>'")
        name, sig_b64 = fields
        if not is_valid_key_name(name) or not sig_b64:
            raise CheckpointError("malformed signature line: bad key name or empty signature")
        raw = b64decode_strict(sig_b64, "signature", canonical=True, error=CheckpointError)
        if len(raw) < KEY_HASH_SIZE + 1:
            raise CheckpointError("malformed signature line: signature too short")
        out.append((name, raw))
    return text, out


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> tuple[str, list[str]]:
    """Check a signed note; return its text (final newline included) and the names that verified.

    Signatures by keys not in ``verifiers`` (matched by name *and* key hash) are ignored, as the
    spec requires, so co-signers and witnesses do not break verification. A signature by a known
    key that does not verify rejects the whole note, and so does a note with no verified
    signature from a known key.
    """
    text, signatures = note_signatures(note)
    known = {(v.name, v.key_hash): v for v in verifiers}
    message = text.encode("utf-8")
    verified: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for name, raw in signatures:
        ident = (name, raw[:KEY_HASH_SIZE])
        verifier = known.get(ident)
        if verifier is None:
            continue  # an unknown key (a co-signer, a witness): ignored, per the spec
        if ident in seen:
            # As the Go reference does: a known key signs once; a second line could
            # otherwise hide a failing signature behind a good one.
            raise CheckpointError(f"key {name!r} signed the note more than once", key=name)
        if not verifier.verify(message, raw[KEY_HASH_SIZE:]):
            raise CheckpointError(f"the signature of key {name!r} does not verify", key=name)
        seen.add(ident)
        verified.append(name)
    if not verified:
        raise CheckpointError("note has no verified signature from a known key")
    return text, verified
