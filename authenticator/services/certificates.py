"""Lab certificates: DSSE envelopes signed with the lab's own key, attached and revoked in the log."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, select

from authenticator.contracts.common import Appended, Receipt
from authenticator.contracts.labs import Certificate
from authenticator.db import read_tx
from authenticator.dsse import parse_envelope, verify_envelope
from authenticator.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from authenticator.ledger.entries import canonical_json
from authenticator.ledger.log import NewEntry
from authenticator.services.certificate_payload import check_payload
from authenticator.services.commands import Command, execute
from authenticator.services.context import ServiceContext, fresh_receipt, receipt_of
from authenticator.services.items import item_row
from authenticator.services.labs import lab_public_key
from authenticator.store.idempotency import IdempotencyKey
from authenticator.store.keys import Principal
from authenticator.store.tables import certificates


def attach_certificate(
    ctx: ServiceContext, principal: Principal, item_id: str, envelope: bytes, *, key: str | None = None
) -> tuple[int, Certificate | Appended]:
    """Verify a lab's signed certificate for ``item_id`` and append ``certificate.attached``.

    The certificate id is derived from the signed payload, so the same envelope sent twice (or
    sixteen times at once) names the same certificate: the first attaches it, the others get 409.
    """
    env = parse_envelope(envelope)
    try:
        payload = json.loads(env.payload)
    except (ValueError, RecursionError) as exc:  # a signed payload can still be nested 20,000 deep
        raise InvalidInput("the envelope's payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the certificate payload must be a JSON object")
    if canonical_json(payload) != env.payload:
        raise InvalidInput("the certificate payload must be RFC 8785 canonical JSON")
    check_payload(payload)
    if payload["item_id"] != item_id:
        raise InvalidInput("the certificate is for another item", certificate_item=str(payload["item_id"]))
    if payload["lab_id"] != principal.id:
        raise PermissionDenied("a lab may only attach certificates issued in its own name")
    item_row(ctx, item_id)  # 404 for an unknown item
    sig = verify_envelope(env, lab_public_key(ctx, principal.id))
    payload_sha256 = hashlib.sha256(env.payload).hexdigest()
    certificate_id = f"crt_{payload_sha256[:24]}"
    envelope_sha256 = ctx.blobs.put(envelope)  # content-addressed: a duplicate stores nothing new
    body = {
        "certificate_id": certificate_id,
        "lab_id": principal.id,
        "outcome": payload["outcome"],
        "payload_sha256": payload_sha256,
        "envelope_sha256": envelope_sha256,
        "signature": base64.b64encode(sig.sig).decode("ascii"),
        "keyid": sig.keyid,
        "inspection_date": payload["inspection_date"],
    }

    def not_yet_attached(conn: Connection) -> None:
        if _certificate_row(conn, certificate_id) is not None:
            raise Conflict("this certificate is already attached", certificate_id=certificate_id)

    entry = NewEntry("certificate.attached", item_id, body)
    fingerprint = f"attach|{item_id}|{hashlib.sha256(envelope).hexdigest()}"
    return _run(
        ctx, principal, entry, certificate_id, not_yet_attached, revoked=False, key=key, fingerprint=fingerprint
    )


def revoke_certificate(
    ctx: ServiceContext, principal: Principal, certificate_id: str, reason: str, *, key: str | None = None
) -> tuple[int, Certificate | Appended]:
    """Append ``certificate.revoked``; only the issuing lab may, and only once."""
    cert = get_certificate(ctx, certificate_id)
    if cert.lab_id != principal.id:
        raise PermissionDenied("only the lab that issued a certificate may revoke it")
    body = {"certificate_id": certificate_id, "lab_id": principal.id, "reason": reason}

    def not_yet_revoked(conn: Connection) -> None:
        row = _certificate_row(conn, certificate_id)
        if row is not None and row.revoked_index is not None:
            raise Conflict("this certificate is already revoked", certificate_id=certificate_id)

    entry = NewEntry("certificate.revoked", cert.item_id, body)
    fingerprint = f"revoke|{certificate_id}|{hashlib.sha256(reason.encode('utf-8')).hexdigest()}"
    return _run(ctx, principal, entry, certificate_id, not_yet_revoked, revoked=True, key=key, fingerprint=fingerprint)


def _run(
    ctx: ServiceContext,
    principal: Principal,
    entry: NewEntry,
    certificate_id: str,
    check: Callable[[Connection], None],
    *,
    revoked: bool,
    key: str | None,
    fingerprint: str,
) -> tuple[int, Certificate | Appended]:
    """Attach or revoke exactly once; the answer is the certificate with the entry's receipt."""
    return execute(
        ctx,
        Command([entry], certificate_id, check=check),
        lambda receipts: _with_receipt(get_certificate(ctx, certificate_id), receipt_of(receipts[0])),
        replay=lambda cid: _replayed(ctx, cid, revoked=revoked),
        answer_type=Certificate,
        key=None if key is None else IdempotencyKey(principal.id, key, fingerprint),
    )


def _replayed(ctx: ServiceContext, certificate_id: str, *, revoked: bool) -> Certificate:
    """A retry's answer when the first was not stored: the certificate and a fresh receipt."""
    cert = get_certificate(ctx, certificate_id)
    index = cert.revoked_index if revoked else cert.attached_index
    if index is None:
        raise NotFound(f"certificate {certificate_id} was not revoked", certificate_id=certificate_id)
    return _with_receipt(cert, fresh_receipt(ctx, index))


def _with_receipt(cert: Certificate, receipt: Receipt) -> Certificate:
    return cert.model_copy(update={"receipt": receipt})


def _certificate_row(conn: Connection, certificate_id: str) -> Row[Any] | None:
    return conn.execute(select(certificates).where(certificates.c.id == certificate_id)).first()


def get_certificate(ctx: ServiceContext, certificate_id: str) -> Certificate:
    """Public: the certificate, its status and the signed envelope (base64) to check it."""
    with read_tx(ctx.engine) as conn:
        row = _certificate_row(conn, certificate_id)
    if row is None:
        raise NotFound(f"no certificate {certificate_id}", certificate_id=certificate_id)
    try:
        envelope: str | None = base64.b64encode(ctx.blobs.get(row.envelope_sha256)).decode("ascii")
    except NotFound:
        envelope = None
    return Certificate(
        id=row.id,
        item_id=row.item_id,
        lab_id=row.lab_id,
        outcome=row.outcome,
        inspection_date=row.inspection_date,
        method=row.method,
        status="revoked" if row.revoked_index is not None else "active",
        revocation_reason=row.revocation_reason,
        attached_index=row.attached_index,
        revoked_index=row.revoked_index,
        payload_sha256=row.payload_sha256,
        envelope=envelope,
    )
