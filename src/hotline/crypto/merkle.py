"""A Merkle tree hash over a batch of envelopes, as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it.

The leaf hash of ``d`` is SHA-256(0x00 || d) and an interior node's is
SHA-256(0x01 || left || right) — the two prefixes keep a leaf from ever passing
for a node (the second-preimage attack on plain Merkle trees). A tree of ``n``
leaves splits at ``k``, the largest power of two smaller than ``n``. An
inclusion proof for leaf ``m`` is the list of sibling hashes from the leaf up;
``root_from_path`` recomputes the root from a leaf, its index, the tree size and
the proof (RFC 9162 §2.1.3.2), so one signature over the root proves every leaf.

Pure: hashlib only.
"""

from __future__ import annotations

import hashlib

MAX_LEAVES = 1 << 16
MAX_PATH = 16  # log2(MAX_LEAVES)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over the leaf hashes ``leaves`` (already ``leaf_hash``ed); n >= 1."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def path(leaves: list[bytes], m: int) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``m``, bottom up."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*path(leaves[:k], m), root(leaves[k:])]
    return [*path(leaves[k:], m - k), root(leaves[:k])]


def paths(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's path, for a batch: each subtree's root is computed once (O(n)
    hashes in all), where calling ``path`` per leaf would recompute them (O(n^2))."""
    memo: dict[tuple[int, int], bytes] = {}

    def sub(lo: int, hi: int) -> bytes:
        key = (lo, hi)
        if key not in memo:
            if hi - lo == 1:
                memo[key] = leaves[lo]
            else:
                k = lo + _split(hi - lo)
                memo[key] = node_hash(sub(lo, k), sub(k, hi))
        return memo[key]

    def walk(lo: int, hi: int, m: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = lo + _split(hi - lo)
        return [*walk(lo, k, m), sub(k, hi)] if m < k else [*walk(k, hi, m), sub(lo, k)]

    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return sub(0, len(leaves)), [walk(0, len(leaves), m) for m in range(len(leaves))]


def root_from_path(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """The root that ``leaf`` at ``index`` of a tree of ``size`` leaves proves with ``proof``, or None
    if the proof cannot be one for that position (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size or size > MAX_LEAVES or len(proof) > MAX_PATH:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None
