"""DSSE envelopes (https://github.com/secure-systems-lab/dsse) for lab certificates. Pure.

A lab signs ``PAE(payloadType, payload)`` with its Ed25519 key, where
``PAE(t, b) = "DSSEv1" SP len(t) SP t SP len(b) SP b`` (lengths in ASCII decimal, bytes of
UTF-8). The envelope is JSON: ``{"payload": b64, "payloadType": t, "signatures": [{"keyid",
"sig": b64}]}``. The payload is the RFC 8785 canonical JSON of the certificate.

Both are read with the strict loader (:mod:`authenticator.strict_json`): an envelope or a
certificate payload that names a key twice (``payload`` twice, say, which parsers that keep
the first key and parsers that keep the last would read differently) is refused, never stored.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authenticator.encoding import b64decode_strict
from authenticator.errors import BadRequest, InvalidInput, SignatureError
from authenticator.ledger.entries import canonical_json
from authenticator.strict_json import DuplicateKeyError, StrictJSONError, loads

PAYLOAD_TYPE = "application/vnd.authenticator.certificate+json"
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_SIGNATURES = 8


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the signature actually covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def keyid_for(public_key: Ed25519PublicKey) -> str:
    """The key id of a lab key: lower-case hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


@dataclass(frozen=True)
class Signature:
    keyid: str | None
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


def parse_envelope(data: bytes) -> Envelope:
    """Parse envelope JSON; :class:`BadRequest` if it is not JSON, :class:`InvalidInput` if malformed."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise InvalidInput(f"a certificate envelope is at most {MAX_ENVELOPE_BYTES} bytes")
    try:
        obj = loads(data)
    except DuplicateKeyError as exc:
        raise BadRequest(f"the certificate envelope has a {exc}", key=exc.key) from exc
    except StrictJSONError as exc:
        raise BadRequest(f"the certificate envelope is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidInput("the certificate envelope must be a JSON object")
    ptype = obj.get("payloadType")
    if not isinstance(ptype, str):
        raise InvalidInput("the envelope needs a payloadType string")
    payload = b64decode_strict(obj.get("payload"), "payload", error=InvalidInput)
    sigs = obj.get("signatures")
    if not isinstance(sigs, list) or not sigs or len(sigs) > MAX_SIGNATURES:
        raise InvalidInput(f"the envelope needs 1 to {MAX_SIGNATURES} signatures")
    parsed: list[Signature] = []
    for s in sigs:
        if not isinstance(s, dict):
            raise InvalidInput("each signature must be an object with keyid and sig")
        keyid = s.get("keyid")
        if keyid is not None and not isinstance(keyid, str):
            raise InvalidInput("a signature's keyid must be a string")
        parsed.append(Signature(keyid=keyid or None, sig=b64decode_strict(s.get("sig"), "sig", error=InvalidInput)))
    if ptype == PAYLOAD_TYPE:
        _check_payload_json(payload)
    return Envelope(payload_type=ptype, payload=payload, signatures=tuple(parsed))


def _check_payload_json(payload: bytes) -> None:
    """A certificate payload is one strict JSON object: no duplicate keys, finite numbers, UTF-8."""
    try:
        loads(payload)
    except DuplicateKeyError as exc:
        raise InvalidInput(f"the certificate payload has a {exc}", key=exc.key) from exc
    except StrictJSONError as exc:
        raise InvalidInput(f"the envelope's payload is not strict JSON: {exc}") from exc


def envelope_payload(data: bytes) -> dict[str, Any]:
    """The certificate payload of stored envelope bytes (no signature check); ValueError if bad."""
    try:
        env = parse_envelope(data)
        obj = loads(env.payload)
    except (InvalidInput, BadRequest) as exc:
        raise ValueError(exc.message) from exc
    if not isinstance(obj, dict):
        raise ValueError("payload is not an object")
    return obj


def verify_envelope(env: Envelope, public_key: Ed25519PublicKey) -> Signature:
    """The envelope's signature made by ``public_key``; :class:`SignatureError` if none verifies."""
    if env.payload_type != PAYLOAD_TYPE:
        raise InvalidInput(f"payloadType must be {PAYLOAD_TYPE}")
    message = pae(env.payload_type, env.payload)
    keyid = keyid_for(public_key)
    for sig in env.signatures:
        if sig.keyid not in (None, keyid):
            continue
        try:
            public_key.verify(sig.sig, message)
        except InvalidSignature:
            continue
        return sig
    raise SignatureError("no signature of the envelope verifies with this lab's registered key")


def sign_envelope(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope (as JSON-ready dict) over the canonical JSON of ``payload``."""
    body = canonical_json(payload)
    sig = private_key.sign(pae(PAYLOAD_TYPE, body))
    return {
        "payload": base64.b64encode(body).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid_for(private_key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}],
    }
