"""What the log's process keeps in memory between transactions, so a group commit or a proof
reads less: the latest leaf hash of recent items (the writer) and the upper Merkle nodes (proofs).

Both hold only committed, final values; ``log.py`` decides when they are valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from authenticator.ledger import sql
from authenticator.ledger.tree import NodeId, root_nodes


class ItemHeads:
    """Latest leaf hash of recently written items, valid for the log's first ``size`` entries.

    Saves the writer one indexed lookup per item. Other processes may append between two of
    our groups: the writer's first read (:meth:`sql.Ops.start_group`) also returns the entries
    appended since ``size``, up to ``MAX_CATCH_UP`` of them, and the cache catches up (or
    starts over when there are more). Only used under the writer lock; changed only by
    committed groups.
    """

    MAX_ITEMS = 200_000
    MAX_CATCH_UP = 20_000

    def __init__(self) -> None:
        self.size = -1
        self.heads: dict[str, bytes] = {}

    def missing(self, items: Sequence[str]) -> list[str]:
        """The items to look up with the group's first read (all of them when the cache is cold)."""
        if self.size < 0:
            return list(items)
        heads = self.heads
        return [i for i in items if i not in heads]

    def lookup(
        self, ops: sql.Ops, cur: Any, start: sql.GroupStart, items: Sequence[str], asked: Sequence[str]
    ) -> dict[str, bytes]:
        """The heads of ``items`` in the tree of ``start.size`` entries (absent: the item is
        new), given what the first read returned for ``asked`` (:meth:`missing`)."""
        heads = self.heads
        if start.size != self.size:
            if start.since is None:  # cold, or too far behind: start over
                heads.clear()
                if len(asked) < len(items):  # the items that were cached must be read again
                    heads.update(ops.last_leaf_hashes(cur, list(set(items).difference(asked))))
            else:
                heads.update(start.since)
            self.size = start.size
        heads.update(start.heads)
        return {i: heads[i] for i in items if i in heads}

    def committed(self, batch_heads: dict[str, bytes], new_size: int) -> None:
        if len(self.heads) > self.MAX_ITEMS:
            self.heads.clear()
        self.heads.update(batch_heads)
        self.size = new_size


class UpperNodes:
    """Hashes of the upper perfect subtrees, of the right border, and the largest tree size known
    to exist.

    A stored perfect subtree never changes, and the upper ones are few and on every proof's
    path, so a proof reads only its lowest levels (see :meth:`authenticator.ledger.log.Ledger._read_inclusion`). Upper
    means at or above ``least(size)`` = ``max(MIN_LEVEL, log2(size) - SPAN_BITS)``: at most
    about ``2 ** (SPAN_BITS + 1)`` nodes (8 MiB) for any log size, kept per level as one byte
    string of 32-byte hashes in index order (a node is a slice: no per-node objects). They are
    loaded in one range read by the first proof (again once the log has grown fourfold), then
    extended by this process's commits and by what proofs read; a proof in a much smaller tree
    reads the levels it lacks. Nodes that do
    not extend a level in order (another process's, the low parts of the right border, which
    every proof's imperfect sibling folds) go to a small dict. Only committed nodes are kept
    (read back, or committed here), so every kept hash is final. A tree once seen to exist (its
    last leaf read, or committed by this process) exists for good, so its proofs skip that check.
    """

    MIN_LEVEL = 4
    SPAN_BITS = 17
    MAX_EXTRA = 4_096

    def __init__(self) -> None:
        self._levels: dict[int, bytearray] = {}
        self._extra: dict[NodeId, bytes] = {}
        self.seen_size = 0
        self.loaded_level = -1
        self._border: set[NodeId] = set()
        self._border_size = -1

    @classmethod
    def least(cls, size: int) -> int:
        return max(cls.MIN_LEVEL, size.bit_length() - cls.SPAN_BITS)

    def split(self, ids: Sequence[NodeId]) -> tuple[dict[NodeId, bytes], list[NodeId]]:
        """The kept hashes among ``ids``, and the ids still to read."""
        levels, extra = self._levels, self._extra
        known: dict[NodeId, bytes] = {}
        missing: list[NodeId] = []
        for n in ids:
            buf = levels.get(n[0])
            end = (n[1] + 1) * 32
            if buf is not None and end <= len(buf):
                known[n] = bytes(buf[end - 32 : end])
            elif n in extra:
                known[n] = extra[n]
            else:
                missing.append(n)
        return known, missing

    def load(self, rows: Sequence[tuple[int, int, bytes]], level: int) -> None:
        """Every stored node from ``level`` up, ordered by level and index (one range read)."""
        self._levels, self._extra = {}, {}
        self.loaded_level = level
        self._extend(rows)

    def keep(self, nodes: Mapping[NodeId, bytes], size: int, *, border: bool = True) -> None:
        """Keep the upper ones of ``nodes``, read for (or committed in) the tree of ``size``, and
        with ``border`` those of its right border (a proof's; a writer's commits would pile up
        the borders of every size it wrote)."""
        least = self.least(size)
        if border and size != self._border_size:
            self._border, self._border_size = set(root_nodes(size)), size
        edge = self._border if border else set()
        self._extend(sorted((lvl, i, h) for (lvl, i), h in nodes.items() if lvl >= least or (lvl, i) in edge))
        self.seen_size = max(self.seen_size, size)

    def _extend(self, rows: Iterable[tuple[int, int, bytes]]) -> None:
        levels, extra = self._levels, self._extra
        for level, idx, h in rows:
            buf = levels.get(level)
            if buf is None and idx == 0 and level >= self.MIN_LEVEL:
                levels[level] = bytearray(h)
            elif buf is not None and idx * 32 == len(buf):
                buf += h
            elif buf is None or idx * 32 > len(buf):  # out of order, or a low border part
                if len(extra) >= self.MAX_EXTRA:
                    extra.clear()
                extra[(level, idx)] = h
