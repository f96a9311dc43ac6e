"""RFC 9162 (Certificate Transparency v2) Merkle tree math. Pure functions, no I/O.

Names and argument orders follow RFC 9162 §2.1 and transparency-dev/merkle, because outside
tools call them. Hashes are 32-byte ``bytes``; proofs are sequences of them, ordered from the
leaf upwards. A failed check raises :class:`~authenticator.errors.ProofError`.

Storage keeps the hash of every *perfect* subtree, addressed as a :data:`NodeId`
``(level, index)``: the node covering leaves ``[index * 2**level, (index + 1) * 2**level)``.
Every node a proof needs is either such a node or the hash of an imperfect right border,
which is folded from at most ``log2(n)`` perfect nodes: see :func:`range_nodes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from authenticator.errors import ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree of ``2**level`` leaves."""


def hash_leaf(data: bytes) -> bytes:
    """Leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError(f"{name} must be {HASH_SIZE} bytes")


def _inner_proof_size(index: int, size: int) -> int:
    return (index ^ (size - 1)).bit_length()


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    inner = _inner_proof_size(index, size)
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = hash_children(seed, h) if (index >> i) & 1 == 0 else hash_children(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = hash_children(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = hash_children(h, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2); raises on a malformed proof."""
    if index < 0 or size < 0:
        raise ProofError("index and size must be non-negative")
    if index >= size:
        raise ProofError(f"index {index} is beyond the tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    for h in proof:
        _check_hash("proof hash", h)
    inner, border = _decomp_incl_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof length {len(proof)}, want {inner + border}")
    res = _chain_inner(bytes(leaf_hash), proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``."""
    _check_hash("root", root)
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree ``(size2, root2)`` extends ``(size1, root1)`` (RFC 9162 §2.1.4.2)."""
    if size1 < 0 or size2 < 0:
        raise ProofError("sizes must be non-negative")
    if size1 == 0:
        # Every tree extends the empty tree: a proof from size 0 proves nothing, so refuse it
        # rather than let a caller believe something was checked.
        raise ProofError("a consistency proof from an empty tree proves nothing")
    for h in proof:
        _check_hash("proof hash", h)
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == size2:
        if proof:
            raise ProofError("size1 == size2 but the proof is not empty")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    _check_hash("root1", root1)
    _check_hash("root2", root2)

    inner, border = _decomp_incl_proof(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(f"wrong proof length {len(proof)}, want {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError("consistency proof does not lead to root1")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError("consistency proof does not lead to root2")


# --- Building proofs from stored perfect-subtree hashes ---------------------------------------

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
