"""What is known about an item now, from its log entries: the facts a buyer reads first.

A pure function of the item's entries (parsed, in log order, repeated events already left out),
so the buyer's page says exactly what the log it verifies says. The level of the first fact is
the badge's (:func:`~authenticator.services.badges.derive_badge`, the same rule on the same
facts); the order is the most serious current fact first:

1. a lab's counterfeit finding in force;
2. a revoked certificate that no later certificate replaced;
3. a lab's authentic certificate in force;
4. when no lab certificate is in force (photo check only): the latest counterfeit photo verdict,
   if any, then the latest photo assessment (a later verdict does not hide an earlier counterfeit
   one: only a lab's certificate does);
5. nothing yet.

What no longer holds goes to ``history`` instead of the current facts: a revocation that a later
certificate replaced (a lab that corrected itself), and a photo verdict that a lab's certificate
in force contradicts (and outranks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from authenticator.contracts.common import Level
from authenticator.services.badges import CertificateFact, VerdictFact, derive_badge, open_revocations

FactKind = Literal[
    "lab_counterfeit",
    "revoked",
    "lab_certified",
    "photo_counterfeit",
    "photo_authentic",
    "photo_inconclusive",
    "nothing",
    "revocation_replaced",
    "photo_outranked",
]


@dataclass(frozen=True)
class Fact:
    """One statement about the item and the entries it rests on."""

    kind: FactKind
    level: Level
    index: int | None = None
    """Log index of the certificate or assessment the fact is about."""
    body: Mapping[str, Any] | None = None
    time: str = ""
    revocation: Mapping[str, Any] | None = None
    """For a revoked certificate: the ``certificate.revoked`` body."""
    revoked_time: str = ""
    replaced_by: Mapping[str, Any] | None = None
    """For a replaced revocation: the body of the certificate in force attached after it."""


@dataclass(frozen=True)
class Standing:
    level: Level
    facts: tuple[Fact, ...]
    """Current facts, the most serious first (never empty)."""
    history: tuple[Fact, ...]
    """Facts that no longer hold, kept so the page can say what happened."""


@dataclass(frozen=True)
class _Cert:
    index: int
    body: Mapping[str, Any]
    time: str
    revoked_index: int | None = None
    revocation: Mapping[str, Any] | None = None
    revoked_time: str = ""


_PHOTO_KIND: dict[str, FactKind] = {
    "counterfeit": "photo_counterfeit",
    "authentic": "photo_authentic",
    "inconclusive": "photo_inconclusive",
}
_PHOTO_LEVEL: dict[str, Level] = {"counterfeit": "warning", "authentic": "ai_verified", "inconclusive": "inconclusive"}


def item_standing(entries: Iterable[tuple[int, Mapping[str, Any]]]) -> Standing:
    """The standing of one item from ``(log index, parsed entry)`` pairs in log order."""
    certs: dict[str, _Cert] = {}
    verdicts: list[tuple[int, Mapping[str, Any], str]] = []
    for index, entry in entries:
        kind = entry.get("type")
        body = entry.get("body")
        if not isinstance(body, Mapping):
            continue
        time = str(entry.get("time", ""))
        if kind == "certificate.attached":
            cid = str(body.get("certificate_id"))
            certs.setdefault(cid, _Cert(index, body, time))
        elif kind == "certificate.revoked":
            cid = str(body.get("certificate_id"))
            cert = certs.get(cid)
            if cert is not None and cert.revoked_index is None:
                certs[cid] = _Cert(cert.index, cert.body, cert.time, index, body, time)
        elif kind == "assessment.recorded":
            verdicts.append((index, body, time))

    ordered = sorted(certs.values(), key=lambda c: c.index)
    facts_in = [
        CertificateFact(str(c.body.get("certificate_id")), str(c.body.get("outcome")), c.index, c.revoked_index)
        for c in ordered
    ]
    verdict_facts = [VerdictFact(str(b.get("assessment_id")), str(b.get("decision")), i) for i, b, _ in verdicts]
    level = derive_badge(verdict_facts, facts_in).level
    by_index = {c.index: c for c in ordered}
    active = [c for c in ordered if c.revoked_index is None]
    still_open = {f.attached_index for f in open_revocations(facts_in)}

    facts: list[Fact] = []
    history: list[Fact] = []
    for c in reversed(active):
        if c.body.get("outcome") == "counterfeit":
            facts.append(Fact("lab_counterfeit", "warning", c.index, c.body, c.time))
    for c in ordered:
        if c.revoked_index is None:
            continue
        if c.index in still_open:
            facts.append(Fact("revoked", "warning", c.index, c.body, c.time, c.revocation, c.revoked_time))
        else:
            assert c.revoked_index is not None
            replacement = next(a for a in active if a.index > c.revoked_index)
            history.append(
                Fact(
                    "revocation_replaced",
                    "lab_certified",
                    c.index,
                    c.body,
                    c.time,
                    c.revocation,
                    c.revoked_time,
                    by_index[replacement.index].body,
                )
            )
    for c in reversed(active):
        if c.body.get("outcome") == "authentic":
            facts.append(Fact("lab_certified", "lab_certified", c.index, c.body, c.time))
    if verdicts:
        index, body, time = verdicts[-1]
        decision = str(body.get("decision"))
        if active:  # a lab's physical inspection outranks the model: worth a word where they disagree
            if decision in ("authentic", "counterfeit") and any(c.body.get("outcome") != decision for c in active):
                history.append(Fact("photo_outranked", _PHOTO_LEVEL.get(decision, "inconclusive"), index, body, time))
        else:
            fakes = [v for v in verdicts if v[1].get("decision") == "counterfeit"]
            if fakes and fakes[-1][0] != index:
                f_index, f_body, f_time = fakes[-1]
                facts.append(Fact("photo_counterfeit", "warning", f_index, f_body, f_time))
            kind = _PHOTO_KIND.get(decision, "photo_inconclusive")
            facts.append(Fact(kind, _PHOTO_LEVEL.get(decision, "inconclusive"), index, body, time))
    if not facts:
        facts.append(Fact("nothing", "inconclusive"))
    return Standing(level=level, facts=tuple(facts), history=tuple(history))
