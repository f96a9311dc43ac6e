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
    """The heads of every item, with the hash of every subtree kept for incremental roots and proofs.

    A subtree is addressed by its heap index ``(1 << depth) | prefix`` (the root is 1, the
    children of ``i`` are ``2i`` and ``2i + 1``). ``_nodes`` holds the hash of every subtree
    holding two or more keys, and each key's leaf at its *leaf depth*: one more than the longest
    prefix it shares with another key, the first depth at which it is alone. Every subtree the
    root or a proof needs is then one dictionary lookup (an absent one is empty: ``ZERO``).

    Changed items are only marked dirty; :meth:`root` places their leaves and rehashes their
    paths bottom-up, level by level, so the upper nodes that many of a batch's keys share are
    hashed once per batch, not once per key.
    """

    def __init__(self) -> None:
        self.heads: dict[int, Head] = {}
        self._keys: list[int] = []
        """Every key, sorted: a key's neighbours give its leaf depth."""
        self._nodes: dict[int, bytes] = {}
        self._dirty: dict[int, bytes] = {}
        """Keys changed since the last root, with their new leaf hashes."""
        self._new: list[int] = []
        """Keys added since the last root: their neighbours' leaves may sit deeper now."""

    @classmethod
    def from_heads(cls, heads: dict[str, Head]) -> ItemMap:
        """A map built at once: for loading and verifying a log."""
        m = cls()
        for item, head in heads.items():
            key = item_key(item)
            key_int = int.from_bytes(key, "big")
            m.heads[key_int] = head
            m._dirty[key_int] = hash_map_leaf(key, head)
        m._keys = sorted(m.heads)
        return m

    def __len__(self) -> int:
        return len(self.heads)

    def get(self, item: str) -> Head | None:
        return self.heads.get(int.from_bytes(item_key(item), "big"))

    def set(self, item: str, head: Head) -> None:
        key = item_key(item)
        self._set(key, int.from_bytes(key, "big"), head)

    def _set(self, key: bytes, key_int: int, head: Head) -> None:
        if key_int not in self.heads:
            insort(self._keys, key_int)
            self._new.append(key_int)
        self.heads[key_int] = head
        self._dirty[key_int] = hash_map_leaf(key, head)  # its path is rehashed by root()

    def advance(self, item: str, index: int, leaf_hash: bytes) -> None:
        """``item`` gained the entry ``index``: its head moves there, its count grows by one."""
        self.advance_key(item_key(item), index, leaf_hash)

    def advance_key(self, key: bytes, index: int, leaf_hash: bytes) -> None:
        """:meth:`advance` for the item whose :func:`item_key` is ``key`` (the leader computes the
        key before it opens the transaction)."""
        key_int = int.from_bytes(key, "big")
        old = self.heads.get(key_int)
        self._set(key, key_int, Head(index, leaf_hash, 1 if old is None else old.count + 1))

    def root(self) -> bytes:
        if self._dirty:
            self._rehash()
        return self._nodes.get(1, ZERO)

    def _rehash(self) -> None:
        keys, nodes, dirty = self._keys, self._nodes, self._dirty
        n = len(keys)
        # A new key can push its neighbours' leaves deeper (they now share a longer prefix
        # with someone): place those leaves again too. No other key's leaf depth changes.
        for key_int in self._new:
            i = bisect_left(keys, key_int)
            for j in (i - 1, i + 1):
                if 0 <= j < n and keys[j] not in dirty:
                    other = keys[j]
                    dirty[other] = hash_map_leaf(other.to_bytes(32, "big"), self.heads[other])
        levels: dict[int, set[int]] = {}
        for key_int, leaf in dirty.items():
            index = self._leaf_index(key_int, bisect_left(keys, key_int))
            nodes[index] = leaf
            level = levels.get(index.bit_length())
            if level is None:
                levels[index.bit_length()] = {index}
            else:
                level.add(index)
        # Bottom-up: a level's parents are complete once every dirty node below is.
        get = nodes.get
        for width in range(max(levels), 1, -1):
            below = levels.pop(width, None)
            if not below:
                continue
            parents = {i >> 1 for i in below}
            nodes.update({p: _sha256(b"\x01" + get(p << 1, ZERO) + get(p << 1 | 1, ZERO)).digest() for p in parents})
            level = levels.get(width - 1)
            if level is None:
                levels[width - 1] = parents
            else:
                level |= parents
        dirty.clear()
        self._new.clear()

    def _leaf_index(self, key_int: int, position: int) -> int:
        """Heap index of the leaf of ``keys[position] == key_int``: at the first depth where no
        other key shares its prefix (the root for a map of one)."""
        keys = self._keys
        shared = 0  # bit length of the XOR with the closest neighbour: smaller is closer
        if position > 0:
            shared = KEY_BITS - (key_int ^ keys[position - 1]).bit_length() + 1
        if position + 1 < len(keys):
            shared = max(shared, KEY_BITS - (key_int ^ keys[position + 1]).bit_length() + 1)
        return (1 << shared) | (key_int >> (KEY_BITS - shared))

    def prove(self, item: str) -> MapProof:
        """The proof for ``item`` (present or absent) against :meth:`root`."""
        return self.prove_key(item_key(item))

    def prove_key(self, key: bytes) -> MapProof:
        """The proof for the item whose key is ``key`` (present or absent)."""
        key_int = int.from_bytes(key, "big")
        self.root()  # bring every stored subtree up to date first
        keys, nodes = self._keys, self._nodes
        siblings: list[bytes] = []
        depth, index, lo, hi = 0, 1, 0, len(keys)
        while hi - lo > 1:
            mid = bisect_left(keys, (2 * index + 1 - (2 << depth)) << (KEY_BITS - depth - 1), lo, hi)
            if _bit(key_int, depth):
                siblings.append(nodes.get(2 * index, ZERO))
                index, lo = 2 * index + 1, mid
            else:
                siblings.append(nodes.get(2 * index + 1, ZERO))
                index, hi = 2 * index, mid
            depth += 1
        if hi == lo:
            return MapProof(tuple(siblings), None)
        only = keys[lo]
        return MapProof(tuple(siblings), (only.to_bytes(32, "big"), self.heads[only]))
