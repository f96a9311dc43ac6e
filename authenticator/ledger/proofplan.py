"""Which stored perfect-subtree hashes a proof needs, and how to fold them. Pure, no I/O.

A proof element is either one perfect node or an imperfect right-border node; the latter is the
fold of at most ``log2(n)`` perfect nodes (:func:`~authenticator.ledger.tree.range_nodes`).
A *plan* lists, per proof element, the perfect nodes to fold, so a store can fetch every node
of a proof at once (one query on PostgreSQL, one primary-key lookup per node on SQLite) and
a writer can answer receipts from the nodes it has just computed, without any read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence

from authenticator.errors import ProofError
from authenticator.ledger.tree import NodeId, consistency_proof_ranges, fold_nodes, range_nodes, root_nodes

_sha256 = hashlib.sha256

ProofPlan = list[tuple[NodeId, ...]]


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Nodes of the RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    Same order as :func:`~authenticator.ledger.tree.inclusion_proof_ranges` (leaf upwards):
    first the siblings below the level where the path leaves the right border (a right sibling
    cut off by ``size`` is an imperfect node), then the perfect left siblings above it.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    plan: ProofPlan = []
    inner = (index ^ (size - 1)).bit_length()
    for level in range(inner):
        sibling = (index >> level) ^ 1
        lo = sibling << level
        if lo + (1 << level) <= size:
            plan.append(((level, sibling),))
        else:
            plan.append(tuple(range_nodes(lo, size)))
    for level in range(inner, size.bit_length()):
        if (index >> level) & 1:
            plan.append(((level, (index >> level) - 1),))
    return plan


def _inclusion_elements(index: int, size: int) -> Iterator[tuple[int, int, int]]:
    """Each element of the inclusion proof of ``index``, leaf upwards, as ``(level, begin, end)``:
    the leaves ``[begin, end)`` it is the RFC 9162 hash of (``end - begin < 2**level`` for the
    imperfect right border)."""
    inner = (index ^ (size - 1)).bit_length()
    for level in range(inner):
        begin = ((index >> level) ^ 1) << level
        yield level, begin, min(begin + (1 << level), size)
    rest, level = index >> inner, inner
    while rest:
        if rest & 1:
            yield level, (rest - 1) << level, rest << level
        rest >>= 1
        level += 1


def block_inclusion_nodes(index: int, size: int, block_level: int) -> tuple[int, int, list[NodeId]]:
    """For a proof read as a block of leaves plus nodes: the block ``[lo, hi)``, the aligned
    ``2**block_level`` leaves around ``index`` cut at ``size``, which hold every element below
    ``block_level``; and the perfect nodes the elements above it need."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    lo = index >> block_level << block_level
    hi = min(lo + (1 << block_level), size)
    nodes: list[NodeId] = []
    for level, begin, end in _inclusion_elements(index, size):
        if level < block_level:
            continue
        if end - begin == 1 << level:
            nodes.append((level, begin >> level))
        else:
            nodes.extend(range_nodes(begin, end))
    return lo, hi, nodes


def block_inclusion_proof(
    index: int, size: int, block_level: int, leaves: Sequence[bytes], nodes: Mapping[NodeId, bytes]
) -> list[bytes]:
    """The inclusion proof from :func:`block_inclusion_nodes`' block (``leaves``, its leaf
    hashes in order) and nodes: elements below ``block_level`` hashed from the leaves."""
    lo = index >> block_level << block_level
    proof: list[bytes] = []
    for level, begin, end in _inclusion_elements(index, size):
        if level < block_level:
            proof.append(_merkle_hash(leaves[begin - lo : end - lo]))
        elif end - begin == 1 << level:
            proof.append(nodes[(level, begin >> level)])
        else:
            proof.append(fold_nodes([nodes[n] for n in range_nodes(begin, end)]))
    return proof


def _merkle_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH of a few leaf hashes (split at the largest power of two below the count)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _sha256(b"\x01" + _merkle_hash(leaves[:k]) + _merkle_hash(leaves[k:])).digest()


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """Nodes of the RFC 9162 consistency proof from ``size1`` to ``size2``."""
    return [tuple(range_nodes(lo, hi)) for lo, hi in consistency_proof_ranges(size1, size2)]


def root_plan(size: int) -> ProofPlan:
    """The root as a one-element plan (empty for the empty tree)."""
    return [tuple(root_nodes(size))] if size else []


def plan_nodes(plan: Sequence[tuple[NodeId, ...]]) -> list[NodeId]:
    """Every distinct node of ``plan``, in first-use order."""
    return list(dict.fromkeys(node for element in plan for node in element))


def materialise(plan: Sequence[tuple[NodeId, ...]], nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """The proof hashes of ``plan``; ``nodes`` must hold every node it names."""
    out: list[bytes] = []
    for element in plan:
        if len(element) == 1:
            out.append(nodes[element[0]])
        else:
            out.append(fold_nodes([nodes[n] for n in element]))
    return out


def batch_inclusion_proofs(start: int, end: int, size: int, nodes: Mapping[NodeId, bytes]) -> list[list[bytes]]:
    """Inclusion proofs of leaves ``[start, end)`` in the tree of ``size`` leaves, straight from a
    map of perfect nodes (a writer's freshly computed nodes plus its old frontier).

    Same result as :func:`inclusion_plan` + :func:`materialise` per leaf, without building
    plans; the imperfect right-border nodes that many of the leaves share are folded once.
    Raises ``KeyError`` if ``nodes`` lacks a node.
    """
    if not 0 <= start <= end <= size:
        raise ProofError(f"leaves [{start}, {end}) are not in a tree of size {size}")
    border: dict[int, bytes] = {}
    out: list[list[bytes]] = []
    for index in range(start, end):
        proof: list[bytes] = []
        inner = (index ^ (size - 1)).bit_length()
        for level in range(inner):
            sibling = (index >> level) ^ 1
            if (sibling + 1) << level <= size:
                proof.append(nodes[(level, sibling)])
            else:
                lo = sibling << level
                h = border.get(lo)
                if h is None:
                    h = border[lo] = fold_nodes([nodes[n] for n in range_nodes(lo, size)])
                proof.append(h)
        rest, level = index >> inner, inner
        while rest:
            if rest & 1:
                proof.append(nodes[(level, rest - 1)])
            rest >>= 1
            level += 1
        out.append(proof)
    return out
