"""Badges, derived from the item's log entries (through the projections). Pure rule + a reader.

Order: a lab's counterfeit finding in force, a revoked certificate that no later certificate
replaced, or (without a lab's authentic certificate) a counterfeit verdict -> ``warning``; else an
active authentic lab certificate -> ``lab_certified``; else the latest verdict authentic ->
``ai_verified``; else ``inconclusive``. A lab's physical inspection outranks the model; nothing
outranks a warning from a lab. A counterfeit verdict is any of the item's verdicts, not only the
latest: otherwise a seller could clear the warning by uploading other photos until one set looks
authentic; only a lab's certificate lifts it. A revocation followed by a new certificate in force (a lab that
corrects itself) is history, not a warning: only a certificate attached *after* the revocation
replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from authenticator.contracts.common import Badge as BadgeOut
from authenticator.contracts.common import Level
from authenticator.db import read_tx
from authenticator.services.context import ServiceContext
from authenticator.store.tables import assessments, certificates


@dataclass(frozen=True)
class CertificateFact:
    id: str
    outcome: str
    attached_index: int
    revoked_index: int | None


@dataclass(frozen=True)
class VerdictFact:
    id: str
    decision: str
    entry_index: int


@dataclass(frozen=True)
class Badge:
    level: Level
    reason: str
    evidence: tuple[int, ...]
    """Log indexes of the entries the badge rests on."""


def open_revocations(certs: list[CertificateFact]) -> list[CertificateFact]:
    """Revoked certificates that no certificate attached after the revocation (and in force) replaced."""
    active = [c for c in certs if c.revoked_index is None]
    return [
        c for c in certs if c.revoked_index is not None and not any(a.attached_index > c.revoked_index for a in active)
    ]


def derive_badge(verdicts: list[VerdictFact], certs: list[CertificateFact]) -> Badge:
    """The badge from an item's verdicts and certificates (each list in log order)."""
    active = [c for c in certs if c.revoked_index is None]
    revoked = open_revocations(certs)
    lab_fake = [c for c in active if c.outcome == "counterfeit"]
    lab_ok = [c for c in active if c.outcome == "authentic"]
    latest = verdicts[-1] if verdicts else None
    photo_fake = [v for v in verdicts if v.decision == "counterfeit"]
    if lab_fake:
        return Badge("warning", "A lab found this item counterfeit.", tuple(c.attached_index for c in lab_fake))
    if revoked:
        idx = tuple(i for c in revoked for i in (c.attached_index, c.revoked_index) if i is not None)
        return Badge("warning", "A lab revoked its certificate for this item.", idx)
    if lab_ok:
        return Badge(
            "lab_certified", "An independent lab inspected and certified this item.", (lab_ok[-1].attached_index,)
        )
    if photo_fake:
        return Badge("warning", "The photo assessment found signs of a counterfeit.", (photo_fake[-1].entry_index,))
    if latest is not None and latest.decision == "authentic":
        return Badge("ai_verified", "The photo assessment found this item authentic.", (latest.entry_index,))
    if latest is not None:
        return Badge(
            "inconclusive", "The photos did not allow a verdict; a lab inspection is needed.", (latest.entry_index,)
        )
    return Badge("inconclusive", "This item has not been assessed yet.", ())


def item_facts(ctx: ServiceContext, item_id: str) -> tuple[list[VerdictFact], list[CertificateFact]]:
    with read_tx(ctx.engine) as conn:
        v = conn.execute(
            select(assessments.c.id, assessments.c.decision, assessments.c.entry_index)
            .where(assessments.c.item_id == item_id)
            .order_by(assessments.c.entry_index)
        ).all()
        c = conn.execute(
            select(
                certificates.c.id, certificates.c.outcome, certificates.c.attached_index, certificates.c.revoked_index
            )
            .where(certificates.c.item_id == item_id)
            .order_by(certificates.c.attached_index)
        ).all()
    return (
        [VerdictFact(r.id, r.decision, int(r.entry_index)) for r in v],
        [
            CertificateFact(
                r.id, r.outcome, int(r.attached_index), None if r.revoked_index is None else int(r.revoked_index)
            )
            for r in c
        ],
    )


def badge_out(b: Badge) -> BadgeOut:
    """The badge as answers carry it."""
    return BadgeOut(level=b.level, reason=b.reason, evidence=list(b.evidence))


def badge_for_item(ctx: ServiceContext, item_id: str) -> BadgeOut:
    return badge_out(derive_badge(*item_facts(ctx, item_id)))
