"""Lab certificates: DSSE envelopes signed with the lab's own key, attached and revoked in the log."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date
from typing import Any

from sqlalchemy import select

from authenticator.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from authenticator.ledger.entries import canonical_json
from authenticator.ledger.log import NewEntry
from authenticator.services.context import ServiceContext, receipt_json
from authenticator.services.dsse import parse_envelope, verify_envelope
from authenticator.services.items import item_row
from authenticator.services.labs import lab_public_key
from authenticator.store.db import read_tx
from authenticator.store.keys import Principal
from authenticator.store.tables import certificates

OUTCOMES = ("authentic", "counterfeit")
_HEX64 = frozenset("0123456789abcdef")


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def check_payload(payload: dict[str, Any]) -> None:
    """The certificate payload schema (see docs/certificates.md); :class:`InvalidInput` if off."""
    required = {"item_id", "lab_id", "outcome", "inspection_date", "method", "photos"}
    allowed = required | {"v", "report_sha256", "notes"}
    missing = required - payload.keys()
    if missing:
        raise InvalidInput(f"the certificate payload lacks {', '.join(sorted(missing))}")
    extra = payload.keys() - allowed
    if extra:
        raise InvalidInput(f"the certificate payload has unknown fields {', '.join(sorted(extra))}")
    if payload.get("v", 1) != 1:
        raise InvalidInput("unsupported certificate payload version")
    if payload["outcome"] not in OUTCOMES:
        raise InvalidInput("outcome must be authentic or counterfeit")
    if not isinstance(payload["method"], str) or not 1 <= len(payload["method"]) <= 500:
        raise InvalidInput("method must be a text of 1 to 500 characters")
    try:
        date.fromisoformat(payload["inspection_date"])
    except (TypeError, ValueError) as exc:
        raise InvalidInput("inspection_date must be a YYYY-MM-DD date") from exc
    if len(str(payload["inspection_date"])) != 10:
        raise InvalidInput("inspection_date must be a YYYY-MM-DD date")
    photos = payload["photos"]
    if not isinstance(photos, list) or len(photos) > 64 or not all(_is_sha256(p) for p in photos):
        raise InvalidInput("photos must be a list of at most 64 lower-case hex SHA-256 digests")
    report = payload.get("report_sha256")
    if report is not None and not _is_sha256(report):
        raise InvalidInput("report_sha256 must be a lower-case hex SHA-256 digest or null")


def attach_certificate(ctx: ServiceContext, principal: Principal, item_id: str, envelope: bytes) -> dict[str, Any]:
    """Verify a lab's signed certificate for ``item_id`` and append ``certificate.attached``."""
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
    with read_tx(ctx.engine) as conn:
        if conn.execute(select(certificates.c.id).where(certificates.c.id == certificate_id)).first() is not None:
            raise Conflict("this certificate is already attached", certificate_id=certificate_id)
    envelope_sha256 = ctx.blobs.put(envelope)
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
    [receipt] = ctx.append([NewEntry("certificate.attached", item_id, body)])
    out = get_certificate(ctx, certificate_id)
    out["receipt"] = receipt_json(receipt, ctx.ledger.entry(receipt.index).data)
    return out


def revoke_certificate(ctx: ServiceContext, principal: Principal, certificate_id: str, reason: str) -> dict[str, Any]:
    """Append ``certificate.revoked``; only the issuing lab may, and only once."""
    cert = get_certificate(ctx, certificate_id)
    if cert["lab_id"] != principal.id:
        raise PermissionDenied("only the lab that issued a certificate may revoke it")
    if cert["status"] == "revoked":
        raise Conflict("this certificate is already revoked", certificate_id=certificate_id)
    body = {"certificate_id": certificate_id, "lab_id": principal.id, "reason": reason}
    [receipt] = ctx.append([NewEntry("certificate.revoked", cert["item_id"], body)])
    out = get_certificate(ctx, certificate_id)
    out["receipt"] = receipt_json(receipt, ctx.ledger.entry(receipt.index).data)
    return out


def get_certificate(ctx: ServiceContext, certificate_id: str) -> dict[str, Any]:
    """Public: the certificate, its status and the signed envelope (base64) to check it."""
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(certificates).where(certificates.c.id == certificate_id)).first()
    if row is None:
        raise NotFound(f"no certificate {certificate_id}", certificate_id=certificate_id)
    try:
        envelope: str | None = base64.b64encode(ctx.blobs.get(row.envelope_sha256)).decode("ascii")
    except NotFound:
        envelope = None
    return {
        "id": row.id,
        "item_id": row.item_id,
        "lab_id": row.lab_id,
        "outcome": row.outcome,
        "inspection_date": row.inspection_date,
        "method": row.method,
        "status": "revoked" if row.revoked_index is not None else "active",
        "revocation_reason": row.revocation_reason,
        "attached_index": row.attached_index,
        "revoked_index": row.revoked_index,
        "payload_sha256": row.payload_sha256,
        "envelope": envelope,
    }
