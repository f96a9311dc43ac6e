"""Proofs built from perfect-subtree hashes agree with a naive recursive RFC 9162 tree."""

from __future__ import annotations

from functools import cache

from authenticator.ledger.merkle import hash_children, hash_leaf, verify_consistency, verify_inclusion
from authenticator.ledger.tree import (
    NodeId,
    consistency_proof_ranges,
    extend_perfect_nodes,
    hashes_for_ranges,
    inclusion_proof_ranges,
    root_from_frontier,
    root_nodes,
)

LEAVES = [hash_leaf(i.to_bytes(4, "big")) for i in range(100)]


@cache
def naive_root(lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return LEAVES[lo]
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    return hash_children(naive_root(lo, lo + k), naive_root(lo + k, hi))


def _store(size: int) -> dict[NodeId, bytes]:
    nodes, _ = extend_perfect_nodes(0, [], LEAVES[:size])
    return dict(nodes)


def test_extend_in_batches_matches_naive_roots() -> None:
    store: dict[NodeId, bytes] = {}
    size, frontier = 0, []
    for batch in [1, 2, 3, 5, 8, 13, 21, 47]:
        new, frontier = extend_perfect_nodes(size, frontier, LEAVES[size : size + batch])
        store.update(new)
        size += len(LEAVES[size : size + batch])
        assert root_from_frontier(frontier) == naive_root(0, size)
        assert [store[n] for n in root_nodes(size)] == frontier


def test_inclusion_every_index_every_size_up_to_100() -> None:
    store = _store(100)
    for size in range(1, 101):
        root = naive_root(0, size)
        for index in range(size):
            proof = hashes_for_ranges(inclusion_proof_ranges(index, size), store.__getitem__)
            verify_inclusion(index, size, LEAVES[index], proof, root)


def test_consistency_every_pair_up_to_64() -> None:
    store = _store(64)
    for size2 in range(1, 65):
        for size1 in range(1, size2 + 1):
            proof = hashes_for_ranges(consistency_proof_ranges(size1, size2), store.__getitem__)
            verify_consistency(size1, size2, proof, naive_root(0, size1), naive_root(0, size2))


def test_block_read_proofs_match_the_plan() -> None:
    """The hot read path (a block of leaves around the leaf, plus nodes above it) gives the same
    proof as ``inclusion_plan``, for every index up to size 70 and around powers of two further
    up, at every block level; the nodes it asks for are perfect subtrees that exist."""
    from authenticator.ledger.proofplan import (
        block_inclusion_nodes,
        block_inclusion_proof,
        inclusion_plan,
        materialise,
    )

    sizes = [*range(1, 71), *(n + d for n in (128, 1024, 65536) for d in (-1, 0, 1))]
    for size in sizes:
        indices = range(size) if size <= 70 else (0, 1, size // 2, size - 2, size - 1)
        for index in indices:
            plan = inclusion_plan(index, size)
            for block_level in range(5):
                lo, hi, ids = block_inclusion_nodes(index, size, block_level)
                assert lo <= index < hi <= size and hi - lo <= 1 << block_level
                assert all(((i + 1) << lvl) <= size for lvl, i in ids)  # perfect, inside the tree
                if size > 70:
                    continue
                wanted = [n for element in plan for n in element] + ids
                nodes = {(lvl, i): naive_root(i << lvl, (i + 1) << lvl) for lvl, i in wanted}
                leaves = LEAVES[lo:hi]
                assert block_inclusion_proof(index, size, block_level, leaves, nodes) == materialise(plan, nodes)
