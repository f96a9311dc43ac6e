"""How many live vision calls each worker process of one deployment has in flight, in a small
shared file, so a shadow model in one worker also gives way to the requests of the others.

Each process owns one 8-byte slot of ``<data_dir>/live-work.slots`` (one writer per slot: no
cross-process lock on the hot path), claimed with a byte-range ``lockf`` it holds for its life. A
process that dies loses its lock with it, so a slot left non-zero by a crash is recognised as
stale (nobody holds its lock) and cleared instead of holding every shadow back for good.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from pathlib import Path

SLOTS = 64
SLOT = struct.Struct("<q")


class LiveSlots:
    """This process's slot in the shared file, and a view of the others'."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        have = os.fstat(self._fd).st_size
        if have < SLOTS * SLOT.size:
            # written, not truncated to size: a sparse file on a full disk would fail later, inside
            # a mapped write (SIGBUS), instead of here with an error the caller handles
            os.pwrite(self._fd, bytes(SLOTS * SLOT.size - have), have)
        self._map = mmap.mmap(self._fd, SLOTS * SLOT.size)
        self._lock = threading.Lock()
        self.slot = self._claim()

    def _claim(self) -> int:
        for slot in range(SLOTS):
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, SLOT.size, slot * SLOT.size)
            except OSError:
                continue  # another live process owns it
            SLOT.pack_into(self._map, slot * SLOT.size, 0)  # a dead owner's count means nothing now
            return slot
        raise OSError(f"all {SLOTS} live-work slots are taken")

    def publish(self, count: int) -> None:
        """This process's live calls in flight."""
        SLOT.pack_into(self._map, self.slot * SLOT.size, count)

    def others_busy(self) -> bool:
        """Whether another live process has live work in flight (a stale slot is cleared)."""
        counts = [c for (c,) in SLOT.iter_unpack(self._map)]
        return any(count and slot != self.slot and not self._stale(slot) for slot, count in enumerate(counts))

    def _stale(self, slot: int) -> bool:
        """True (and the slot cleared) when no live process holds ``slot``'s lock."""
        with self._lock:  # lockf locks belong to the process: probe one slot at a time
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, SLOT.size, slot * SLOT.size)
            except OSError:
                return False  # held: its owner is alive
            SLOT.pack_into(self._map, slot * SLOT.size, 0)
            fcntl.lockf(self._fd, fcntl.LOCK_UN, SLOT.size, slot * SLOT.size)
            return True

    def close(self) -> None:
        self.publish(0)
        self._map.close()
        os.close(self._fd)  # releases this process's slot lock
