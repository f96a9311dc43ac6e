"""Building RFC 9162 proofs and roots from stored perfect-subtree hashes. Pure, no I/O.

Storage keeps the hash of every *perfect* subtree, addressed as a :data:`NodeId`
``(level, index)``: the node covering leaves ``[index * 2**level, (index + 1) * 2**level)``.
Every node a proof needs is either such a node or the hash of an imperfect right border,
which is folded from at most ``log2(n)`` perfect nodes: see :func:`range_nodes`. A batch of
leaves is integrated from the tree's frontier (its :func:`root_nodes`) with
:func:`extend_perfect_nodes`. The counterpart of transparency-dev/merkle's ``compact/``; the
hashing and the verification of proofs are :mod:`authenticator.ledger.merkle`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from authenticator.errors import ProofError
from authenticator.ledger.merkle import EMPTY_ROOT, hash_children

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree of ``2**level`` leaves."""

LeafRange = tuple[int, int]
"""Half-open range ``[begin, end)`` of leaves that is one node of the RFC 9162 tree."""


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The perfect subtrees that make up the RFC 9162 node over ``[begin, end)``, left to right.

    Folding their hashes from the right (``h = H(left, h)``) gives the node's hash. Valid for
    every node that RFC 9162's recursion produces (``begin`` is aligned to the largest power of
    two not above ``end - begin``'s bit length).
    """
    if not 0 <= begin < end:
        raise ValueError(f"bad range [{begin}, {end})")
    nodes: list[NodeId] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        while begin % (1 << level):
            level -= 1
        nodes.append((level, begin >> level))
        begin += 1 << level
    return nodes


def fold_nodes(hashes: Sequence[bytes]) -> bytes:
    """Hash of an RFC 9162 node from its perfect parts (see :func:`range_nodes`)."""
    if not hashes:
        return EMPTY_ROOT
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = hash_children(left, h)
    return h


def root_nodes(size: int) -> list[NodeId]:
    """Perfect subtrees whose fold is the root of a tree of ``size`` leaves (empty for 0)."""
    return range_nodes(0, size) if size else []


def inclusion_proof_ranges(index: int, size: int) -> list[LeafRange]:
    """Leaf ranges of the nodes of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf upwards."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    out: list[LeafRange] = []
    lo, hi, m = 0, size, index
    stack: list[LeafRange] = []
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m < k:
            stack.append((lo + k, hi))
            hi = lo + k
        else:
            stack.append((lo, lo + k))
            lo, m = lo + k, m - k
    out.extend(reversed(stack))
    return out


def consistency_proof_ranges(size1: int, size2: int) -> list[LeafRange]:
    """Leaf ranges of the nodes of PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1), in order."""
    if not 0 <= size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    stack: list[LeafRange] = []
    lo, hi, m, b = 0, size2, size1, True
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            stack.append((lo + k, hi))
            hi = lo + k
        else:
            stack.append((lo, lo + k))
            lo, m, b = lo + k, m - k, False
    head: list[LeafRange] = [] if b else [(lo, hi)]
    return head + list(reversed(stack))


def hashes_for_ranges(ranges: Iterable[LeafRange], get_node: Callable[[NodeId], bytes]) -> list[bytes]:
    """Materialise proof hashes, reading each perfect node once through ``get_node``."""
    return [fold_nodes([get_node(n) for n in range_nodes(lo, hi)]) for lo, hi in ranges]


def extend_perfect_nodes(
    size: int, frontier: Sequence[bytes], leaf_hashes: Sequence[bytes]
) -> tuple[list[tuple[NodeId, bytes]], list[bytes]]:
    """Append leaves to a tree of ``size`` leaves whose ``frontier`` is the hashes of
    :func:`root_nodes(size) <root_nodes>`; return every perfect node completed (leaves
    included) and the new frontier. This is how a batch is integrated with O(log n) reads.
    """
    if len(frontier) != len(root_nodes(size)):
        raise ValueError("frontier does not match the tree size")
    stack: list[tuple[int, bytes]] = [(lvl, h) for (lvl, _), h in zip(root_nodes(size), frontier, strict=True)]
    new_nodes: list[tuple[NodeId, bytes]] = []
    n = size
    for leaf in leaf_hashes:
        node_level, node_hash = 0, leaf
        new_nodes.append(((0, n), leaf))
        n += 1
        while stack and stack[-1][0] == node_level:
            _, left = stack.pop()
            node_hash = hash_children(left, node_hash)
            node_level += 1
            new_nodes.append(((node_level, (n >> node_level) - 1), node_hash))
        stack.append((node_level, node_hash))
    return new_nodes, [h for _, h in stack]


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """Root of the tree whose perfect parts are ``frontier`` (left to right)."""
    return fold_nodes(frontier)
