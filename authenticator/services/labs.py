"""Labs: registered by an operator with their Ed25519 public key; they get a ``lab`` API key."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from sqlalchemy import Connection, Row, insert, select

from authenticator.contracts.labs import Lab, LabCreated, LabList
from authenticator.db import read_tx, utc_now
from authenticator.dsse import keyid_for
from authenticator.errors import Conflict, InvalidInput, NotFound
from authenticator.services.context import ServiceContext
from authenticator.services.registrations import Caller, fingerprint, register_once
from authenticator.store.keys import insert_principal, issue_key_in, new_id
from authenticator.store.tables import labs


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key given as PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise InvalidInput("public_key is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput("public_key must be an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("public_key must be PEM or the base64 of a raw 32-byte Ed25519 key") from exc
    if len(raw) != 32:
        raise InvalidInput("a raw Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def register_lab(
    ctx: ServiceContext,
    caller: Caller,
    name: str,
    accreditation: str,
    public_key: str,
    *,
    key: str | None = None,
) -> LabCreated:
    """Register a lab and issue its first API key (shown once; again to a retry with the same
    ``Idempotency-Key``, see :mod:`authenticator.services.registrations`).

    A public key is one lab's: registering it again is 409 naming that lab, nothing created (the
    check and the inserts run in one serialised transaction; a unique index backs it)."""
    parsed = parse_public_key(public_key)
    raw_b64 = base64.b64encode(parsed.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")

    def create(conn: Connection) -> tuple[str, LabCreated]:
        existing = conn.execute(
            select(labs.c.id).where(labs.c.public_key == raw_b64, labs.c.duplicate_of.is_(None))
        ).first()
        if existing is not None:
            raise Conflict(f"this public key is already registered to lab {existing.id}", lab_id=str(existing.id))
        lab_id = new_id("lab")
        insert_principal(conn, "lab", name, principal_id=lab_id)
        row = {
            "id": lab_id,
            "name": name,
            "accreditation": accreditation,
            "public_key": raw_b64,
            "keyid": keyid_for(parsed),
            "created_at": utc_now(),
        }
        conn.execute(insert(labs).values(**row))
        lab = Lab(**row)
        issued = issue_key_in(conn, lab_id)
        return lab_id, LabCreated(**lab.model_dump(), api_key=issued.api_key, key_id=issued.key_id)

    request = fingerprint("labs.register", name, accreditation, raw_b64)
    return register_once(ctx, caller, key, request, LabCreated, create, id_name="lab_id")


def get_lab(ctx: ServiceContext, lab_id: str) -> Lab:
    """Public record of a lab: anyone may check its certificates' signatures with this key."""
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(labs).where(labs.c.id == lab_id)).first()
    if row is None:
        raise NotFound(f"no lab {lab_id}", lab_id=lab_id)
    return _lab_record(row)


def list_labs(ctx: ServiceContext) -> LabList:
    """Public: every registered lab (name, accreditation, key), oldest first: where a seller can
    send an item for the physical inspection that an inconclusive or contested verdict needs."""
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(labs).order_by(labs.c.created_at, labs.c.id)).all()
    return LabList(labs=[_lab_record(row) for row in rows])


def _lab_record(row: Row[Any]) -> Lab:
    return Lab(
        id=row.id,
        name=row.name,
        accreditation=row.accreditation,
        public_key=row.public_key,
        keyid=row.keyid,
        created_at=row.created_at,
    )


def lab_public_key(ctx: ServiceContext, lab_id: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(get_lab(ctx, lab_id).public_key))
