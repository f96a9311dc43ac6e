"""The item map: a sparse Merkle tree of every item's head, committed to by each checkpoint.

An item's hash chain shows that nothing *between* two of its entries was left out; it cannot
show that its *newest* entries were not cut off. So every checkpoint also commits to a map
from each item to its head (the latest leaf index, its leaf hash and the item's event count),
and a trace carries the proof of its item's head: a verifier checks, with O(log n) hashes,
that the trace ends at the committed head, and an unknown item gets a non-membership proof.

The tree is a binary trie over the 256 bits of ``key = SHA-256(item id)``, hashed as:

* an empty subtree is ``ZERO`` (32 zero bytes);
* a subtree holding exactly one item, at whatever depth, is that item's leaf,
  ``SHA-256(0x00 || key || value)`` with ``value = index (u64 BE) || leaf hash || count (u64 BE)``;
* any other subtree is ``SHA-256(0x01 || left || right)``.

The domain bytes keep a leaf from ever passing for a node, and the key inside the leaf pins
its position, so a proof is the list of siblings from the root down to the subtree that holds
the key (about log2 of the number of items) plus what that subtree is: the item's own leaf,
``ZERO``, or another item's leaf sharing the path (both of the latter prove absence).

This module is pure; ``ItemMap`` keeps the tree in memory with cached subtree hashes, so an
update costs one path of hashes. The browser (``api/static/trace-verify.js``) and
``authenticator/trace_verify.py`` implement :func:`root_from_proof` again, independently.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from dataclasses import dataclass

_sha256 = hashlib.sha256
KEY_BITS = 256
ZERO = bytes(32)
MAP_EXTENSION_PREFIX = "item-map "
"""The checkpoint extension line: ``item-map <base64 root>``."""


@dataclass(frozen=True)
class Head:
    """An item's latest entry and how many entries it has."""

    index: int
    leaf_hash: bytes
    count: int

    def value(self) -> bytes:
        return self.index.to_bytes(8, "big") + self.leaf_hash + self.count.to_bytes(8, "big")


def map_extension(root: bytes) -> str:
    """The checkpoint extension line that commits to the item map's root."""
    import base64

    return MAP_EXTENSION_PREFIX + base64.b64encode(root).decode("ascii")


def item_key(item: str) -> bytes:
    return hashlib.sha256(item.encode("utf-8")).digest()


def hash_map_leaf(key: bytes, head: Head) -> bytes:
    return hashlib.sha256(b"\x00" + key + head.value()).digest()


def hash_map_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _bit(key_int: int, depth: int) -> int:
    return (key_int >> (KEY_BITS - 1 - depth)) & 1


@dataclass(frozen=True)
class MapProof:
    """Siblings from the root down, and what the subtree holding the key is.

    ``terminal`` is None (an empty subtree: the key is absent), or the ``(key, head)`` of the
    one item in that subtree: the queried item (present), or another one (the key is absent).
    """

    siblings: tuple[bytes, ...]
    terminal: tuple[bytes, Head] | None


def root_from_proof(key: bytes, proof: MapProof) -> bytes:
    """The root a proof implies; raises ValueError when the terminal cannot be on ``key``'s path."""
    depth = len(proof.siblings)
    if depth > KEY_BITS:
        raise ValueError("a map proof has at most 256 siblings")
    key_int = int.from_bytes(key, "big")
    if proof.terminal is None:
        node = ZERO
    else:
        other, head = proof.terminal
        if len(other) != 32:
            raise ValueError("a map key is 32 bytes")
        if depth and (int.from_bytes(other, "big") >> (KEY_BITS - depth)) != (key_int >> (KEY_BITS - depth)):
            raise ValueError("the proof's leaf is not on the key's path")
        node = hash_map_leaf(other, head)
    for d in range(depth - 1, -1, -1):
        sibling = proof.siblings[d]
        node = hash_map_node(sibling, node) if _bit(key_int, d) else hash_map_node(node, sibling)
    return node


def committed_head(key: bytes, proof: MapProof, root: bytes) -> Head | None:
    """The head the map commits to for ``key`` (None: absent); ValueError if the proof is wrong."""
    if root_from_proof(key, proof) != root:
        raise ValueError("the item-map proof does not lead to the checkpoint's item-map root")
    if proof.terminal is None or proof.terminal[0] != key:
        return None
    return proof.terminal[1]


class ItemMap:
    """The heads of every item, with subtree hashes cached for incremental roots and proofs.

    Changed items are only marked dirty; :meth:`root` then recomputes the cached subtrees that
    hold a dirty key (one path each, shared near the root) and reuses every other one.
    """

    def __init__(self) -> None:
        self.heads: dict[int, Head] = {}
        self._leaves: dict[int, bytes] = {}
        self._keys: list[int] = []
        self._cache: dict[tuple[int, int], bytes] = {}
        self._dirty: set[int] = set()

    @classmethod
    def from_heads(cls, heads: dict[str, Head]) -> ItemMap:
        """A map built at once: for loading and verifying a log."""
        m = cls()
        for item, head in heads.items():
            key = item_key(item)
            key_int = int.from_bytes(key, "big")
            m.heads[key_int] = head
            m._leaves[key_int] = hash_map_leaf(key, head)
        m._keys = sorted(m.heads)
        m._dirty = set(m._keys)
        return m

    def __len__(self) -> int:
        return len(self.heads)

    def get(self, item: str) -> Head | None:
        return self.heads.get(int.from_bytes(item_key(item), "big"))

    def set(self, item: str, head: Head) -> None:
        key = item_key(item)
        key_int = int.from_bytes(key, "big")
        if key_int not in self.heads:
            insort(self._keys, key_int)
        self.heads[key_int] = head
        self._leaves[key_int] = hash_map_leaf(key, head)
        self._dirty.add(key_int)  # the cached subtrees on its path are recomputed by root()

    def advance(self, item: str, index: int, leaf_hash: bytes) -> None:
        """``item`` gained the entry ``index``: its head moves there, its count grows by one."""
        old = self.get(item)
        self.set(item, Head(index, leaf_hash, 1 if old is None else old.count + 1))

    def root(self) -> bytes:
        dirty = sorted(self._dirty)
        value = self._subtree(0, 0, 0, len(self._keys), dirty, 0, len(dirty))
        self._dirty.clear()
        return value

    def prove(self, item: str) -> MapProof:
        """The proof for ``item`` (present or absent) against :meth:`root`."""
        key_int = int.from_bytes(item_key(item), "big")
        self.root()  # bring every cached subtree up to date first
        keys = self._keys
        siblings: list[bytes] = []
        depth, prefix, lo, hi = 0, 0, 0, len(keys)
        while hi - lo > 1:
            mid = bisect_left(keys, (prefix * 2 + 1) << (KEY_BITS - depth - 1), lo, hi)
            if _bit(key_int, depth):
                siblings.append(self._subtree(depth + 1, prefix * 2, lo, mid, [], 0, 0))
                prefix, lo = prefix * 2 + 1, mid
            else:
                siblings.append(self._subtree(depth + 1, prefix * 2 + 1, mid, hi, [], 0, 0))
                prefix, hi = prefix * 2, mid
            depth += 1
        if hi == lo:
            return MapProof(tuple(siblings), None)
        only = keys[lo]
        return MapProof(tuple(siblings), (only.to_bytes(32, "big"), self.heads[only]))

    def _subtree(self, depth: int, prefix: int, lo: int, hi: int, dirty: list[int], dlo: int, dhi: int) -> bytes:
        """The hash of the subtree ``(depth, prefix)`` holding ``keys[lo:hi]``, of which
        ``dirty[dlo:dhi]`` changed since it was cached."""
        n = hi - lo
        if n == 0:
            return ZERO
        if n == 1:
            return self._leaves[self._keys[lo]]
        node = (depth, prefix)
        if dlo == dhi:
            cached = self._cache.get(node)
            if cached is not None:
                return cached
        threshold = (prefix * 2 + 1) << (KEY_BITS - depth - 1)
        mid = bisect_left(self._keys, threshold, lo, hi)
        dmid = bisect_left(dirty, threshold, dlo, dhi) if dlo < dhi else dlo
        left = self._subtree(depth + 1, prefix * 2, lo, mid, dirty, dlo, dmid)
        right = self._subtree(depth + 1, prefix * 2 + 1, mid, hi, dirty, dmid, dhi)
        value = _sha256(b"\x01" + left + right).digest()
        self._cache[node] = value
        return value
