"""C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature): Ed25519 timestamped cosignatures.

A witness (a *cosigner*) states that, as of a time, the checkpoint it signs is the largest
consistent tree it has seen for the log of that origin. Its signature is an ordinary signed-note
signature line on the checkpoint, ``— <witness name> base64(key id || timestamp || signature)``:

* key id = SHA-256(name || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4] (signature type 0x04);
* timestamp = POSIX seconds, 8 bytes big-endian, at most 2**63 - 1;
* signature = Ed25519 over ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the whole
  checkpoint body (its final newline included, no signature lines).

The public key travels as a C2SP verifier key with type byte 0x04:
``<name>+<hex key id>+<base64(0x04 || key)>``. Pure: no I/O. A malformed input raises
:class:`~authenticator.errors.CheckpointError`.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authenticator.errors import CheckpointError
from authenticator.ledger.note import (
    ED25519_KEY_SIZE,
    ED25519_SIG_SIZE,
    KEY_HASH_SIZE,
    SIG_PREFIX,
    is_valid_key_name,
    note_signatures,
    split_verifier_key,
)
from authenticator.ledger.note import _check_ed25519_public_key as _check_point

ALG_COSIGNATURE_V1 = 0x04
"""Signature-type byte of Ed25519 cosignature/v1 keys (key ids and verifier keys)."""
TIMESTAMP_SIZE = 8
COSIGNATURE_SIZE = KEY_HASH_SIZE + TIMESTAMP_SIZE + ED25519_SIG_SIZE
MAX_TIMESTAMP = 2**63 - 1
HEADER = "cosignature/v1\n"


def cosignature_key_hash(name: str, public_key_raw: bytes) -> bytes:
    """The key id of a cosigner: SHA-256(name || "\\n" || 0x04 || key)[:4]."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key_raw).digest()
    return digest[:KEY_HASH_SIZE]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosigner signs: the header line, the time line, then the checkpoint body."""
    _check_timestamp(timestamp)
    if not isinstance(body, str) or not body.endswith("\n") or body.count("\n") < 3:
        raise CheckpointError("a cosigned checkpoint body has at least three lines, each ending in a newline")
    return f"{HEADER}time {timestamp}\n{body}".encode()


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError("a cosignature timestamp is an integer in [0, 2**63)")


def _check_key(name: str, public_key_raw: bytes) -> None:
    if not is_valid_key_name(name):
        raise CheckpointError(f"invalid cosigner name {name!r}: non-empty, no whitespace, no '+'")
    if not isinstance(public_key_raw, bytes) or len(public_key_raw) != ED25519_KEY_SIZE:
        raise CheckpointError(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes")
    _check_point(public_key_raw)


@dataclass(frozen=True)
class Cosignature:
    """One verified cosignature: who, when (POSIX seconds) and the signature line itself."""

    name: str
    verifier_key: str
    timestamp: int
    line: str
    """The ``— name base64`` line, with its newline."""


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's public key; checks cosignature/v1 signatures (usable with ``open_note``)."""

    name: str
    public_key_raw: bytes

    def __post_init__(self) -> None:
        _check_key(self.name, self.public_key_raw)

    @classmethod
    def from_verifier_key(cls, vkey: str) -> CosignatureVerifier:
        """Parse ``<name>+<hex key id>+<base64(0x04 || key)>``; the key id must match."""
        name, key_hash, key = split_verifier_key(vkey.strip() if isinstance(vkey, str) else vkey)
        if not key or key[0] != ALG_COSIGNATURE_V1:
            raise CheckpointError(
                "not a witness key: a cosignature verifier key has type 0x04 (Ed25519 cosignature/v1)"
            )
        if len(key) != 1 + ED25519_KEY_SIZE:
            raise CheckpointError(f"an Ed25519 cosignature verifier key is {1 + ED25519_KEY_SIZE} bytes")
        verifier = cls(name, key[1:])
        if verifier.key_hash != key_hash:
            raise CheckpointError("the key hash of the verifier key does not match its name and key")
        return verifier

    @cached_property
    def key_hash(self) -> bytes:
        return cosignature_key_hash(self.name, self.public_key_raw)

    @cached_property
    def verifier_key(self) -> str:
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key_raw).decode("ascii")
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    @cached_property
    def _public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key_raw)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (timestamp || Ed25519 signature, after the key id) cosigns the
        note text ``message``."""
        if len(signature) != TIMESTAMP_SIZE + ED25519_SIG_SIZE:
            return False
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        try:
            signed = cosigned_message(message.decode("utf-8"), timestamp)
            self._public_key.verify(signature[TIMESTAMP_SIZE:], signed)
        except (CheckpointError, UnicodeDecodeError, InvalidSignature):
            return False
        return True


class CosignatureSigner:
    """A witness's private key: makes cosignature/v1 signature lines."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise CheckpointError("a cosigner needs an Ed25519 private key")
        raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, raw)
        self.name = name
        self.verifier_key = self.verifier.verifier_key
        self._private_key = private_key

    def cosign(self, body: str, timestamp: int | None = None) -> str:
        """The signature line (with its newline) cosigning the checkpoint ``body`` at ``timestamp``
        (default: now)."""
        when = int(time.time()) if timestamp is None else timestamp
        signature = self._private_key.sign(cosigned_message(body, when))
        blob = self.verifier.key_hash + when.to_bytes(TIMESTAMP_SIZE, "big") + signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def verify_cosignatures(note: str | bytes, verifiers: Sequence[CosignatureVerifier]) -> list[Cosignature]:
    """The cosignatures on ``note`` by the given witness keys, one per witness, in key order.

    Lines of other keys (the log's own, unknown witnesses) are ignored. A line that carries a
    given key's name and id but does not verify rejects the note, as ``open_note`` does for any
    known key, and so does a key that signed twice. The log's own signature is not checked here:
    open the note with the log key (``verify_checkpoint``) as well.
    """
    text, signatures = note_signatures(note)
    message = text.encode("utf-8")
    known = {(v.name, v.key_hash): v for v in verifiers}
    found: dict[tuple[str, bytes], Cosignature] = {}
    for name, raw in signatures:
        ident = (name, raw[:KEY_HASH_SIZE])
        verifier = known.get(ident)
        if verifier is None:
            continue
        if ident in found:
            raise CheckpointError(f"witness {name!r} cosigned the note more than once", key=name)
        if not verifier.verify(message, raw[KEY_HASH_SIZE:]):
            raise CheckpointError(f"the cosignature of witness {name!r} does not verify", key=name)
        line = f"{SIG_PREFIX}{name} {base64.b64encode(raw).decode('ascii')}\n"
        timestamp = int.from_bytes(raw[KEY_HASH_SIZE : KEY_HASH_SIZE + TIMESTAMP_SIZE], "big")
        found[ident] = Cosignature(name, verifier.verifier_key, timestamp, line)
    return [found[k] for k in ((v.name, v.key_hash) for v in verifiers) if k in found]
