"""Witnessing: the log submits its checkpoints to independent witnesses and serves their cosignatures.

For each configured witness (``AUTHENTICATOR_WITNESSES``) one background thread submits the
log's latest checkpoint with C2SP tlog-witness ``add-checkpoint``: ``old <size>`` is the size
that witness last cosigned, with the consistency proof from it. A 409 names the witness's own
size, and the request is made again from there (once: a 409 for a size the log already sent,
or a witness size beyond the log's, is a fork or a rollback and is reported, not retried).
Each cosignature is verified against the witness's configured key before it is kept
(``app_log_cosignatures``), and checkpoints are served with the cosignatures of their size
appended as extra signature lines: the note still opens with the log key alone, and a client
with the witnesses' keys can count them (``trace verify --witness KEY --min-witnesses K``).

An append only wakes the threads (it never waits for a witness, nor fails because of one);
they also look again every ``POLL_SECONDS``, for appends made by other processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import httpx
from sqlalchemy import Engine, delete, insert, select

from authenticator import db
from authenticator.config import Settings, parse_witnesses
from authenticator.errors import AuthenticatorError, CheckpointError
from authenticator.ledger.checkpoint import Checkpoint
from authenticator.ledger.cosignature import Cosignature, CosignatureVerifier, verify_cosignatures
from authenticator.ledger.log import Ledger
from authenticator.ledger.note import MAX_SIGNATURES
from authenticator.store.tables import log_cosignatures
from authenticator.witness.protocol import ADD_CHECKPOINT, SIZE_CONTENT_TYPE, format_add_checkpoint, parse_size_answer

logger = logging.getLogger("authenticator.witnessing")

POLL_SECONDS = 30.0
"""How often each thread looks for a checkpoint it has not submitted, without being woken."""
RETRY_SECONDS = 5.0
"""How long a thread waits after a failed submission before it tries again."""


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log submits to: its submission URL prefix and its cosignature key."""

    url: str
    verifier: CosignatureVerifier

    @property
    def verifier_key(self) -> str:
        return self.verifier.verifier_key


def configured_witnesses(settings: Settings) -> list[WitnessEndpoint]:
    """The witnesses of ``settings.witnesses`` (parsed once per distinct value)."""
    return list(_witnesses(settings.witnesses)) if settings.witnesses else []


@lru_cache(maxsize=8)
def _witnesses(value: str) -> tuple[WitnessEndpoint, ...]:
    return tuple(WitnessEndpoint(url, CosignatureVerifier.from_verifier_key(v)) for url, v in parse_witnesses(value))


def note_size(note: str) -> int:
    """The tree size of a signed checkpoint note (its text is everything before the blank line)."""
    return Checkpoint.parse(note.split("\n\n", 1)[0] + "\n").size


class CosignatureStore:
    """The verified cosignatures the log keeps, in the API's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, size: int, cosignature: Cosignature) -> None:
        """Keep ``cosignature`` of the checkpoint of ``size`` (a newer one of the same size replaces it)."""
        t = log_cosignatures
        key = cosignature.verifier_key
        with db.write_tx(self.engine) as conn:
            conn.execute(delete(t).where(t.c.witness_key == key, t.c.tree_size == size))
            conn.execute(
                insert(t).values(
                    witness_key=key,
                    tree_size=size,
                    line=cosignature.line,
                    cosigned_at=cosignature.timestamp,
                    received_at=db.utc_now(),
                )
            )

    def latest_size(self, witness_key: str) -> int | None:
        """The largest tree size ``witness_key`` cosigned, as far as this log knows."""
        t = log_cosignatures
        with db.read_tx(self.engine) as conn:
            value = conn.execute(
                select(t.c.tree_size).where(t.c.witness_key == witness_key).order_by(t.c.tree_size.desc()).limit(1)
            ).scalar()
        return None if value is None else int(value)

    def lines(self, size: int, witness_keys: Sequence[str]) -> list[str]:
        """The kept cosignature lines of the checkpoint of ``size``, in ``witness_keys`` order."""
        if not witness_keys:
            return []
        t = log_cosignatures
        with db.read_tx(self.engine) as conn:
            rows = conn.execute(
                select(t.c.witness_key, t.c.line).where(t.c.tree_size == size, t.c.witness_key.in_(list(witness_keys)))
            ).all()
        by_key = {str(k): str(line) for k, line in rows}
        return [by_key[k] for k in witness_keys if k in by_key]


def cosigned_note(note: str, store: CosignatureStore, witnesses: Sequence[WitnessEndpoint]) -> str:
    """``note`` with the kept cosignatures of its tree size by ``witnesses`` appended."""
    if not witnesses:
        return note
    lines = store.lines(note_size(note), [w.verifier_key for w in witnesses])
    room = MAX_SIGNATURES - note.split("\n\n", 1)[1].count("\n")
    return note + "".join(lines[: max(room, 0)])


class WitnessSubmitter:
    """One background thread per witness; :meth:`notify` after an append wakes them all."""

    def __init__(
        self,
        ledger: Ledger,
        store: CosignatureStore,
        witnesses: Sequence[WitnessEndpoint],
        *,
        timeout: float = 10.0,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.witnesses = list(witnesses)
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self._wake = {w.verifier_key: threading.Event() for w in self.witnesses}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acked: dict[str, int] = {}
        """Per witness key: the size it last cosigned (or reported in a 409), as far as we know."""

    def start(self) -> None:
        for w in self.witnesses:
            thread = threading.Thread(target=self._run, args=(w,), name=f"witness {w.verifier.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def notify(self) -> None:
        """Wake every witness thread (cheap; never blocks, never raises)."""
        for event in self._wake.values():
            event.set()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.notify()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, witness: WitnessEndpoint) -> None:
        wake = self._wake[witness.verifier_key]
        wait = 0.0
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while not self._stop.is_set():
                wake.wait(wait)
                wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.submit(witness, client)
                    wait = self.poll_seconds
                except Exception as exc:  # a witness down or misbehaving must not stop the thread
                    message = exc.message if isinstance(exc, AuthenticatorError) else str(exc)
                    logger.warning("witness %s: %s", witness.verifier.name, message)
                    wait = RETRY_SECONDS

    def submit(self, witness: WitnessEndpoint, client: httpx.Client) -> int | None:
        """Bring ``witness`` up to the latest checkpoint; returns the size it cosigned (None if it
        refused, which is logged). Raises on a transport error or a malformed answer."""
        note = self.ledger.latest_checkpoint()
        size = note_size(note)
        key = witness.verifier_key
        if key not in self._acked:
            self._acked[key] = self.store.latest_size(key) or 0
        if self._acked[key] == size and self.store.lines(size, [key]):
            return size
        for _ in range(2):
            old = self._acked[key]
            if old > size:
                logger.error(
                    "witness %s has cosigned a tree of %d entries, larger than this log's %d: "
                    "the log was rolled back, or another log signs with this origin",
                    witness.verifier.name,
                    old,
                    size,
                )
                return None
            proof = self.ledger.consistency_proof(old, size) if 0 < old < size else []
            response = client.post(
                witness.url + ADD_CHECKPOINT,
                content=format_add_checkpoint(old, proof, note),
                headers={"content-type": "text/plain; charset=utf-8"},
            )
            if response.status_code == 200:
                cosignatures = verify_cosignatures(note + response.text, [witness.verifier])
                if not cosignatures:
                    raise CheckpointError("the witness answered no cosignature by its configured key")
                self.store.add(size, cosignatures[0])
                self._acked[key] = size
                return size
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(SIZE_CONTENT_TYPE):
                theirs = parse_size_answer(response.text)
                if theirs != old:
                    self._acked[key] = theirs
                    continue
            logger.error(
                "witness %s refused the checkpoint of size %d (old %d): %d %s",
                witness.verifier.name,
                size,
                old,
                response.status_code,
                response.text[:200].strip(),
            )
            return None
        logger.error("witness %s answered 409 twice for the checkpoint of size %d", witness.verifier.name, size)
        return None
