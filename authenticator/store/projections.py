"""Projections: the query tables, fed from the log's entries (and the blob store).

Every write of the API applies its entries to the tables **in the append's own transaction**
(:meth:`Projector.apply`, called from the ledger's ``after`` hook under the writer lock), so
the log and the tables commit together or not at all. Entries the tables have not seen (a log
written by an older version, or appended by a tool that bypasses the service) are applied
first, in log order, in the same transaction.

Rules for a log that holds duplicates (old versions could append them under concurrency):
**the first entry wins**. A second ``certificate.attached`` with a known certificate id, a
second revocation or close, a second registration of an id: later ones are ignored by the
tables, badges and pages (``ledger verify`` reports them as warnings). :data:`RULES_VERSION`
names the rules; a database projected under other rules is rebuilt from the log at start-up,
as is one whose tables cannot take the log's next entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select, update

from authenticator.db import read_tx
from authenticator.dsse import envelope_payload
from authenticator.errors import AuthenticatorError, IntegrityError, NotFound
from authenticator.ledger.entries import Entry, canonical_json, parse_entry
from authenticator.store.blobs import BlobStore
from authenticator.store.tables import (
    PROJECTION_TABLES,
    assessment_photos,
    assessments,
    certificates,
    custody,
    erasures,
    items,
    listings,
    model_lineage,
    models,
    projection_state,
)

if TYPE_CHECKING:
    from authenticator.ledger.log import Ledger

STATE_ROW = "main"
CHUNK = 1000
RULES_VERSION = 3
"""1: every entry applied as it came. 2: first entry wins; the photo-set natural key. 3: each
assessment's photos in a table of their own, and ``photos.erased``."""

log = logging.getLogger("authenticator.projections")


class LogEntry(Protocol):
    """What the projections need of a stored entry (the ledger's ``StoredEntry``)."""

    @property
    def index(self) -> int: ...
    @property
    def data(self) -> bytes: ...


def photoset_sha256(photo_sha256: Sequence[str]) -> str:
    """The natural key of an assessment's photos: order and repeats do not make a new set."""
    return hashlib.sha256("\n".join(sorted(set(photo_sha256))).encode("ascii")).hexdigest()


def _state(conn: Connection) -> tuple[int, int | None] | None:
    row = conn.execute(
        select(projection_state.c.applied_size, projection_state.c.rules_version).where(
            projection_state.c.name == STATE_ROW
        )
    ).first()
    return None if row is None else (int(row.applied_size), row.rules_version)


def _set_applied(conn: Connection, size: int) -> None:
    conn.execute(update(projection_state).where(projection_state.c.name == STATE_ROW).values(applied_size=size))


class Projector:
    """Applies log entries to the projection tables, exactly once each, in order."""

    def __init__(self, engine: Engine, ledger: Ledger, blobs: BlobStore) -> None:
        self.engine = engine
        self.ledger = ledger
        self.blobs = blobs
        self._handlers: dict[str, Callable[[Connection, int, Entry], None]] = {
            "item.registered": self._item_registered,
            "assessment.recorded": self._assessment_recorded,
            "certificate.attached": self._certificate_attached,
            "certificate.revoked": self._certificate_revoked,
            "listing.published": self._listing_published,
            "listing.closed": self._listing_closed,
            "custody.transferred": self._custody_transferred,
            "model.registered": self._model_registered,
            "model.promoted": self._model_lineage,
            "model.shadowed": self._model_lineage,
            "photos.erased": self._photos_erased,
        }

    def applied_size(self) -> int:
        with read_tx(self.engine) as conn:
            state = _state(conn)
        return 0 if state is None else state[0]

    # --- inside the append's transaction ---------------------------------------------------

    def apply(self, conn: Connection, new: Sequence[LogEntry]) -> None:
        """Apply the entries an append just wrote (after any the tables had not seen yet)."""
        if not new:
            return
        first = int(new[0].index)
        self._bring_to(conn, first)
        for stored in new:
            self._apply(conn, stored)
        _set_applied(conn, first + len(new))

    def _bring_to(self, conn: Connection, size: int) -> None:
        """Apply entries [applied, size) read on ``conn``; the tables then reflect ``size``."""
        state = _state(conn)
        if state is None:
            conn.execute(
                insert(projection_state).values(name=STATE_ROW, applied_size=0, rules_version=RULES_VERSION)
            )
            applied = 0
        else:
            applied = state[0]
        if applied > size:
            raise IntegrityError(f"the projections claim {applied} entries but the log has {size}")
        for lo in range(applied, size, CHUNK):
            for stored in self.ledger.entries_in(conn, lo, min(size, lo + CHUNK)):
                self._apply(conn, stored)
        if size > applied:
            _set_applied(conn, size)

    # --- on their own, under the writer lock -----------------------------------------------

    def catch_up(self) -> int:
        """Apply every entry not yet applied; return the log size the tables now reflect."""

        def run(conn: Connection, size: int) -> int:
            self._bring_to(conn, size)
            return size

        if self.applied_size() == self.ledger.size():
            return self.applied_size()
        return self.ledger.locked(run)

    def rebuild(self) -> int:
        """Empty every projection table and replay the whole log, in one transaction."""

        def run(conn: Connection, size: int) -> int:
            for table in reversed(PROJECTION_TABLES):
                conn.execute(delete(table))
            conn.execute(insert(projection_state).values(name=STATE_ROW, applied_size=0, rules_version=RULES_VERSION))
            self._bring_to(conn, size)
            return size

        return self.ledger.locked(run)

    def ensure_consistent(self) -> int:
        """At start-up: catch up; rebuild when the tables were projected under other rules or
        cannot take the log's entries (a start must never be bricked by what the log holds)."""
        with read_tx(self.engine) as conn:
            state = _state(conn)
        if state is not None and state[1] != RULES_VERSION:
            log.warning("projection rules changed (%s -> %s): rebuilding from the log", state[1], RULES_VERSION)
            return self.rebuild()
        try:
            return self.catch_up()
        except AuthenticatorError as exc:
            if isinstance(exc, NotFound) or exc.http_status == 503:
                raise
            log.warning("the projections disagree with the log (%s): rebuilding from the log", exc.message)
            return self.rebuild()

    def _apply(self, conn: Connection, stored: LogEntry) -> None:
        entry = parse_entry(bytes(stored.data))
        handler = self._handlers.get(entry.type)
        if handler is not None:
            handler(conn, int(stored.index), entry)

    @staticmethod
    def _exists(conn: Connection, column: Any, value: Any) -> bool:
        return conn.execute(select(column).where(column == value).limit(1)).first() is not None

    # --- one handler per entry type -------------------------------------------------------

    def _item_registered(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        if self._exists(conn, items.c.id, e.item):
            return  # first wins
        conn.execute(
            insert(items).values(
                id=e.item,
                platform=b["platform"],
                category=b["category"],
                brand=b["brand"],
                model=b["model"],
                serial_commitment=b["serial_commitment"],
                registered_index=index,
                registered_at=e.time,
            )
        )

    def _assessment_recorded(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        if self._exists(conn, assessments.c.id, b["assessment_id"]):
            return  # first wins
        conn.execute(
            insert(assessments).values(
                id=b["assessment_id"],
                item_id=e.item,
                entry_index=index,
                decision=b["decision"],
                probability_authentic=b["probability_authentic"],
                model_sha256=b["model_sha256"],
                model_version=b["model_version"],
                recorded_at=e.time,
                body=canonical_json(b).decode("utf-8"),
                photoset_sha256=photoset_sha256(b["photo_sha256"]),
            )
        )
        for sha in dict.fromkeys(b["photo_sha256"]):
            conn.execute(
                insert(assessment_photos).values(
                    assessment_id=b["assessment_id"], photo_sha256=sha, item_id=e.item, recorded_at=e.time
                )
            )

    def _certificate_attached(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        if self._exists(conn, certificates.c.id, b["certificate_id"]):
            return  # first wins: a second attachment of the same certificate changes nothing
        conn.execute(
            insert(certificates).values(
                id=b["certificate_id"],
                item_id=e.item,
                lab_id=b["lab_id"],
                outcome=b["outcome"],
                inspection_date=b["inspection_date"],
                method=self._certificate_method(b["envelope_sha256"]),
                payload_sha256=b["payload_sha256"],
                envelope_sha256=b["envelope_sha256"],
                attached_index=index,
                attached_at=e.time,
            )
        )

    def _certificate_method(self, envelope_sha256: str) -> str | None:
        """The inspection method, read back from the stored envelope (the log holds its hash)."""
        try:
            payload = envelope_payload(self.blobs.get(envelope_sha256))
        except (NotFound, ValueError):
            return None
        method = payload.get("method")
        return method if isinstance(method, str) else None

    def _certificate_revoked(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        conn.execute(
            update(certificates)
            .where(
                certificates.c.id == b["certificate_id"],
                certificates.c.lab_id == b["lab_id"],
                certificates.c.item_id == e.item,
                certificates.c.revoked_index.is_(None),  # first wins
            )
            .values(revoked_index=index, revoked_at=e.time, revocation_reason=b["reason"])
        )

    def _listing_published(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        if self._exists(conn, listings.c.id, b["listing_id"]):
            return  # first wins
        try:
            title: str | None = self.blobs.get(b["title_sha256"]).decode("utf-8")
        except (NotFound, UnicodeDecodeError):
            title = None  # deleted on request: the listing stays, its title is gone
        conn.execute(
            insert(listings).values(
                id=b["listing_id"],
                item_id=e.item,
                platform=b["platform"],
                title=title,
                title_sha256=b["title_sha256"],
                price=b["price"],
                currency=b["currency"],
                published_index=index,
                published_at=e.time,
            )
        )

    def _listing_closed(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        conn.execute(
            update(listings)
            .where(listings.c.id == b["listing_id"], listings.c.item_id == e.item, listings.c.closed_index.is_(None))
            .values(closed_index=index, closed_reason=b["reason"])
        )

    def _custody_transferred(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        conn.execute(
            insert(custody).values(
                entry_index=index,
                item_id=e.item,
                event=b["event"],
                platform=b["platform"],
                counterparty_commitment=b["counterparty_commitment"],
                recorded_at=e.time,
            )
        )

    def _model_registered(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        if self._exists(conn, models.c.sha256, b["model_sha256"]):
            return  # a second registration of the same file (two servers raced): the first counts
        conn.execute(
            insert(models).values(
                sha256=b["model_sha256"],
                name=b["name"],
                version=b["version"],
                card_sha256=b["card_sha256"],
                metrics=json.dumps(b["metrics"], sort_keys=True),
                registered_index=index,
                registered_at=e.time,
            )
        )

    def _photos_erased(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        done = set(
            conn.execute(
                select(erasures.c.photo_sha256).where(erasures.c.assessment_id == b["assessment_id"])
            ).scalars()
        )
        for sha in dict.fromkeys(b["photo_sha256"]):
            if sha in done:
                continue  # first wins: the photo was already erased by an earlier entry
            conn.execute(
                insert(erasures).values(
                    assessment_id=b["assessment_id"],
                    photo_sha256=sha,
                    item_id=e.item,
                    entry_index=index,
                    erased_at=e.time,
                    erased_by=b["by"],
                    reason=b["reason"],
                )
            )

    def _model_lineage(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
        conn.execute(
            insert(model_lineage).values(
                entry_index=index,
                type=e.type,
                model_sha256=b["model_sha256"],
                card_sha256=b["card_sha256"],
                evaluation_sha256=b["evaluation_sha256"],
                replaces=b.get("replaces"),
                action=b.get("action"),
                active=None if "active" not in b else int(bool(b["active"])),
                evaluation_summary=self._evaluation_summary(b["evaluation_sha256"]),
                recorded_at=e.time,
            )
        )

    def _evaluation_summary(self, sha256: str | None) -> str | None:
        """The summary of an evaluation report kept in the blob store (the log holds its hash)."""
        if sha256 is None:
            return None
        try:
            report = json.loads(self.blobs.get(sha256))
        except (NotFound, ValueError):
            return None
        summary = report.get("summary") if isinstance(report, dict) else None
        return None if summary is None else json.dumps(summary, sort_keys=True)
