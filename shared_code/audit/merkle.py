"""RFC 6962 / RFC 9162 Merkle tree hashing, the compact range, and proof generation.

Hashes are raw 32-byte SHA-256 digests. A *node* ``(level, index)`` is the root of the perfect
subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``; the log stores some of them
(tiles, :mod:`shared_code.audit.proofs`) and the proofs here ask a :class:`NodeSource` for them,
so generating a proof reads O(log n) nodes and never the whole log.

The compact range of a tree of size n is the list of its right-edge perfect subtrees, one per set
bit of n, largest first (transparency-dev/merkle ``compact.Range``): O(log n) hashes from which the
root follows and to which a leaf is appended in O(log n) without the rest of the tree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``node(level, index)`` → the 32-byte hash of that perfect subtree (it must exist in the tree).
NodeSource = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two k with k < n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive hashes of one level (RFC 9162 §2.1.1), e.g. a tile's root."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = largest_power_of_two_below(len(hashes))
    return node_hash(subtree_root(hashes[:k]), subtree_root(hashes[k:]))


@dataclass
class CompactRange:
    """The right edge of a tree of ``size`` leaves: ``nodes[i] = (level, hash)``, levels strictly
    decreasing, one per set bit of ``size``."""

    size: int
    nodes: list[tuple[int, bytes]]

    @classmethod
    def empty(cls) -> "CompactRange":
        return cls(0, [])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns every node completed by it as ``(level, index, hash)``,
        the leaf itself first. O(log n)."""
        index = self.size
        completed = [(0, index, leaf)]
        level, current = 0, leaf
        while self.nodes and self.nodes[-1][0] == level:
            _, left = self.nodes.pop()
            current = node_hash(left, current)
            level += 1
            index >>= 1
            completed.append((level, index, current))
        self.nodes.append((level, current))
        self.size += 1
        return completed

    def root(self) -> bytes:
        """MTH(D[0:size]) (RFC 9162 §2.1.1): the right edge folded from the right."""
        if not self.nodes:
            return EMPTY_ROOT
        current = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            current = node_hash(left, current)
        return current

    def check(self) -> None:
        """Raise ``ValueError`` unless the levels are exactly the set bits of ``size``."""
        levels = [level for level, _ in self.nodes]
        expected = [bit for bit in range(self.size.bit_length() - 1, -1, -1) if self.size >> bit & 1]
        if levels != expected or any(len(h) != HASH_BYTES for _, h in self.nodes):
            raise ValueError(f"compact range does not match size {self.size}")


def perfect_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` covering leaves ``[start, end)``, left to right,
    each as large as its alignment allows (``start`` must be the first leaf of a subtree the RFC
    recursion produces, as in every proof below)."""
    nodes = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_hash(node: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC 9162 §2.1.3/§2.1.4 recursions produce: perfect
    subtrees in decreasing size, folded from the right."""
    hashes = [node(level, index) for level, index in perfect_nodes(start, end)]
    current = hashes[-1]
    for left in reversed(hashes[:-1]):
        current = node_hash(left, current)
    return current


def inclusion_proof(node: NodeSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1: PATH(m, D[n]) for leaf ``index`` (m) in a tree of ``size`` (n) leaves,
    nodes ordered from the leaf up. Requires 0 <= index < size."""
    if not 0 <= index < size:
        raise ValueError("index must be in [0, size)")
    proof: list[bytes] = []

    def path(m: int, lo: int, hi: int) -> None:
        if hi - lo == 1:
            return
        k = largest_power_of_two_below(hi - lo)
        if m < k:
            path(m, lo, lo + k)
            proof.append(range_hash(node, lo + k, hi))
        else:
            path(m - k, lo + k, hi)
            proof.append(range_hash(node, lo, lo + k))

    path(index, 0, size)
    return proof


def consistency_proof(node: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true) between tree sizes ``old_size``
    (m) and ``new_size`` (n). Requires 0 < old_size <= new_size (empty when they are equal)."""
    if not 0 < old_size <= new_size:
        raise ValueError("sizes must satisfy 0 < old_size <= new_size")
    proof: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> None:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(range_hash(node, lo, hi))
            return
        k = largest_power_of_two_below(n)
        if m <= k:
            subproof(m, lo, lo + k, whole)
            proof.append(range_hash(node, lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append(range_hash(node, lo, lo + k))

    subproof(old_size, 0, new_size, True)
    return proof
