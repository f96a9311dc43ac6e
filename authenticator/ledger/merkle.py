"""RFC 9162 (Certificate Transparency v2) Merkle hashing and proof verification. Pure, no I/O.

Names and argument orders follow RFC 9162 §2.1 and transparency-dev/merkle (``proof/``),
because outside tools call them. Hashes are 32-byte ``bytes``; proofs are sequences of them,
ordered from the leaf upwards. A failed check raises :class:`~authenticator.errors.ProofError`.
This is what the trace verifiers (:mod:`authenticator.trace_verify`, ``trace-verify.js``)
mirror; building proofs from stored nodes is :mod:`authenticator.ledger.tree`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from authenticator.errors import ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


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
