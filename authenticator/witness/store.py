"""The witness's state: one SQLite file of its own, independent of any log's database.

Per origin, the latest checkpoint it cosigned (size, root, the note as received). Checking a
request against that row and writing the new one happen in one ``BEGIN IMMEDIATE`` transaction,
so two concurrent requests (from one process or several) can never roll the state back, and the
transaction commits (``synchronous=FULL``) before the witness answers. Requests that were
validly signed by a log but refused (a second root for a size already cosigned, a consistency
proof that does not verify) are kept as evidence of the log's misbehaviour.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from authenticator.errors import ConfigurationError, StorageUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS witnessed (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    request BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Witnessed:
    """The latest checkpoint cosigned for one origin."""

    origin: str
    size: int
    root: bytes
    note: str
    cosigned_at: int


class WitnessTx:
    """One transaction on the state (only inside :meth:`WitnessStore.transaction`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def latest(self, origin: str) -> Witnessed | None:
        row = self._conn.execute(
            "SELECT origin, size, root, note, cosigned_at FROM witnessed WHERE origin = ?", (origin,)
        ).fetchone()
        return None if row is None else Witnessed(str(row[0]), int(row[1]), bytes(row[2]), str(row[3]), int(row[4]))

    def record(self, origin: str, size: int, root: bytes, note: str, cosigned_at: int) -> None:
        self._conn.execute(
            "INSERT INTO witnessed (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note, cosigned_at = excluded.cosigned_at",
            (origin, size, root, note, cosigned_at),
        )

    def keep_evidence(self, origin: str, status: int, reason: str, request: bytes) -> None:
        self._conn.execute(
            "INSERT INTO refusals (origin, received_at, status, reason, request) VALUES (?, ?, ?, ?, ?)",
            (origin, int(time.time()), status, reason, request),
        )


class WitnessStore:
    """The SQLite file at ``path`` (created 0600 in a 0700 folder)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
                os.close(fd)
            with self._connect() as conn:
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the witness state {self.path}: {exc}", path=str(self.path)) from exc

    def _connect(self) -> contextlib.closing[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")
        return contextlib.closing(conn)

    @contextmanager
    def transaction(self) -> Iterator[WitnessTx]:
        """Read, check and write under one ``BEGIN IMMEDIATE`` (one writer at a time, all
        processes); committed on a clean exit, rolled back on an exception."""
        try:
            with self._lock, self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield WitnessTx(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"the witness state cannot be read or written: {exc}") from exc

    def latest(self, origin: str) -> Witnessed | None:
        with self.transaction() as tx:
            return tx.latest(origin)

    def refusals(self, origin: str) -> list[tuple[int, str, bytes]]:
        """Kept evidence for ``origin``: ``(status, reason, request body)``, oldest first."""
        with self._lock, self._connect() as conn:
            rows = conn.execute(
                "SELECT status, reason, request FROM refusals WHERE origin = ? ORDER BY id", (origin,)
            ).fetchall()
        return [(int(s), str(r), bytes(b)) for s, r, b in rows]
