"""Projections: the query tables, fed from the log's entries (and the blob store).

Every write of the API appends to the ledger first and then calls :meth:`Projector.catch_up`,
which applies the entries the tables have not seen yet, in log order, and records how far it
got. A crash between the two only delays the tables: the next catch-up (or a rebuild) fills
them from the log. :meth:`Projector.rebuild` empties them and replays the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select, update

from authenticator.errors import NotFound
from authenticator.ledger.entries import Entry, canonical_json, parse_entry
from authenticator.store.blobs import BlobStore
from authenticator.store.db import read_tx, write_tx
from authenticator.store.tables import (
    PROJECTION_TABLES,
    assessments,
    certificates,
    custody,
    items,
    listings,
    models,
    projection_state,
)

STATE_ROW = "main"
CHUNK = 1000


class LogEntry(Protocol):
    """What the projections need of a stored entry (the ledger's ``StoredEntry``)."""

    @property
    def index(self) -> int: ...
    @property
    def data(self) -> bytes: ...


class LogSource(Protocol):
    """The part of the ledger the projections read."""

    def size(self) -> int: ...
    def entries(self, start: int, end: int) -> Sequence[Any]: ...


def _applied(conn: Connection) -> int | None:
    value = conn.execute(select(projection_state.c.applied_size).where(projection_state.c.name == STATE_ROW)).scalar()
    return None if value is None else int(value)


class Projector:
    """Applies log entries to the projection tables, exactly once each, in order."""

    def __init__(self, engine: Engine, log: LogSource, blobs: BlobStore) -> None:
        self.engine = engine
        self.log = log
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
        }

    def applied_size(self) -> int:
        with read_tx(self.engine) as conn:
            return _applied(conn) or 0

    def catch_up(self) -> int:
        """Apply every entry not yet applied; return the log size the tables now reflect.

        Entries are read *before* taking the projection lock, so the lock holder never waits
        for a second pooled connection (which could deadlock a busy pool).
        """
        start = self.applied_size()
        size = self.log.size()
        if start >= size:
            return start
        fetched = self._fetch(start, size)
        with write_tx(self.engine, lock="projections") as conn:
            applied = _applied(conn)
            if applied is None:
                conn.execute(insert(projection_state).values(name=STATE_ROW, applied_size=0))
                applied = 0
            if applied < start:  # someone rebuilt meanwhile; the next call catches up
                return applied
            for stored in fetched:
                if stored.index >= applied:
                    self._apply(conn, stored)
            if size > applied:
                conn.execute(
                    update(projection_state).where(projection_state.c.name == STATE_ROW).values(applied_size=size)
                )
            return max(size, applied)

    def rebuild(self) -> int:
        """Empty every projection table and replay the whole log, in one transaction."""
        with write_tx(self.engine, lock="projections") as conn:
            for table in reversed(PROJECTION_TABLES):
                conn.execute(delete(table))
            size = self.log.size()
            for start in range(0, size, CHUNK):
                for stored in self.log.entries(start, min(size, start + CHUNK)):
                    self._apply(conn, stored)
            conn.execute(insert(projection_state).values(name=STATE_ROW, applied_size=size))
            return size

    def _fetch(self, start: int, end: int) -> list[LogEntry]:
        out: list[LogEntry] = []
        for lo in range(start, end, CHUNK):
            out.extend(self.log.entries(lo, min(end, lo + CHUNK)))
        return out

    def _apply(self, conn: Connection, stored: LogEntry) -> None:
        entry = parse_entry(bytes(stored.data))
        handler = self._handlers.get(entry.type)
        if handler is not None:
            handler(conn, int(stored.index), entry)

    # --- one handler per entry type -------------------------------------------------------

    def _item_registered(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
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
            )
        )

    def _certificate_attached(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
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
        from authenticator.services.dsse import envelope_payload  # pure; avoids an import cycle

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
            .where(certificates.c.id == b["certificate_id"], certificates.c.revoked_index.is_(None))
            .values(revoked_index=index, revoked_at=e.time, revocation_reason=b["reason"])
        )

    def _listing_published(self, conn: Connection, index: int, e: Entry) -> None:
        b = e.body
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
            .where(listings.c.id == b["listing_id"], listings.c.closed_index.is_(None))
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
        if conn.execute(select(models.c.sha256).where(models.c.sha256 == b["model_sha256"])).first() is not None:
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
