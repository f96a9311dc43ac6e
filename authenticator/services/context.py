"""The resources every service needs, opened once per process and closed on shutdown."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from authenticator.config import Settings
from authenticator.contracts.common import Receipt
from authenticator.ledger.log import AfterAppend, Check, Ledger, NewEntry, StoredEntry
from authenticator.ledger.log import Receipt as LogReceipt
from authenticator.services.witnessing import CosignatureStore, WitnessSubmitter, configured_witnesses
from authenticator.store.blobs import BlobStore
from authenticator.store.migrate import migrate
from authenticator.store.photo_index import SqlPhotoReuseIndex
from authenticator.store.projections import Projector

if TYPE_CHECKING:
    from authenticator.vision.service import Assessor


def b64(data: bytes) -> str:
    """Standard base64 (with padding), the encoding of every hash in the API."""
    return base64.b64encode(data).decode("ascii")


@dataclass
class ServiceContext:
    """Ledger, projections, blob store, photo index and (when serving) the model."""

    settings: Settings
    ledger: Ledger
    blobs: BlobStore
    projector: Projector
    photo_index: SqlPhotoReuseIndex
    assessor: Assessor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    witnessing: WitnessSubmitter | None = None
    """Submits new checkpoints to the configured witnesses (the API starts it; see
    :meth:`start_witnessing`)."""

    @property
    def engine(self) -> Engine:
        return self.ledger.engine

    @classmethod
    def open(cls, settings: Settings, *, load_model: bool = True) -> ServiceContext:
        """Open the ledger (migrating it), the API tables, the blob store and the model."""
        ledger = Ledger.from_settings(settings)
        try:
            migrate(ledger.engine)
            blobs = BlobStore(settings.blob_dir)
            ctx = cls(
                settings=settings,
                ledger=ledger,
                blobs=blobs,
                projector=Projector(ledger.engine, ledger, blobs),
                photo_index=SqlPhotoReuseIndex(ledger.engine, settings.phash_max_hamming),
            )
            ctx.projector.ensure_consistent()
            if load_model:
                from authenticator.vision.service import Assessor

                ctx.assessor = Assessor.from_settings(settings)
        except BaseException:
            ledger.close()
            raise
        return ctx

    def start_witnessing(self) -> None:
        """Start submitting checkpoints to ``settings.witnesses`` in the background (if any)."""
        witnesses = configured_witnesses(self.settings)
        if witnesses and self.witnessing is None:
            self.witnessing = WitnessSubmitter(
                self.ledger,
                CosignatureStore(self.engine),
                witnesses,
                timeout=self.settings.witness_timeout_seconds,
            )
            self.witnessing.start()
            self.witnessing.notify()

    def close(self) -> None:
        if self.witnessing is not None:
            self.witnessing.close()
        self.ledger.close()

    def append(
        self, entries: Sequence[NewEntry], *, check: Check | None = None, after: AfterAppend | None = None
    ) -> list[LogReceipt]:
        """Append to the log and update the projections in one transaction (one checkpoint);
        ``check`` and ``after`` run in it too, under the writer lock (see ``Ledger.append_batch``)."""

        def project(conn: Connection, stored: list[StoredEntry]) -> None:
            self.projector.apply(conn, stored)
            if after is not None:
                after(conn, stored)

        receipts = self.ledger.append_batch(entries, check=check, after=project)
        if self.witnessing is not None:
            self.witnessing.notify()  # committed: the witnesses get the new checkpoint in the background
        return receipts


def receipt_of(receipt: LogReceipt) -> Receipt:
    """A receipt as the API answers it: everything a client needs to check inclusion itself."""
    return Receipt(
        index=receipt.index,
        leaf_hash=b64(receipt.leaf_hash),
        tree_size=receipt.tree_size,
        checkpoint=receipt.checkpoint,
        inclusion_proof=[b64(h) for h in receipt.inclusion_proof],
        entry=b64(receipt.data),
    )


def fresh_receipt(ctx: ServiceContext, index: int) -> Receipt:
    """A receipt for an entry already in the log, against the latest checkpoint."""
    return receipt_of(ctx.ledger.receipt(index))
