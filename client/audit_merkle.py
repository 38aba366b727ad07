"""Merkle tree verification for the audit log, written from RFC 9162 (Certificate Transparency 2.0),
independent of the server's code (the client ships apart from the app).

Hashes are 32-byte SHA-256 digests (RFC 9162 §2.1.1, the RFC 6962 tree):
leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right).
Every ``verify_*`` function raises :class:`ProofError` naming what failed and returns None.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

HASH_BYTES = 32


class ProofError(ValueError):
    """A proof, hash or root does not verify."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class RootBuilder:
    """The root of a growing tree from its leaves, in O(log n) memory: the right edge of perfect
    subtrees (one per set bit of the size), the compact form of RFC 9162 §2.1.1's MTH recursion.

    ``RootBuilder.resume(size, edge)`` continues from a saved :attr:`edge`, so a verifier that
    trusted a tree of ``size`` only needs the entries after it.
    """

    def __init__(self) -> None:
        self.size = 0
        self.edge: list[tuple[int, bytes]] = []

    @classmethod
    def resume(cls, size: int, edge: Iterable[tuple[int, bytes]]) -> "RootBuilder":
        builder = cls()
        builder.size, builder.edge = size, [(int(level), bytes(h)) for level, h in edge]
        expected = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if [level for level, _ in builder.edge] != expected:
            raise ProofError(f"saved tree edge does not match size {size}")
        return builder

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        level, current = 0, leaf
        while self.edge and self.edge[-1][0] == level:
            current = node_hash(self.edge.pop()[1], current)
            level += 1
        self.edge.append((level, current))
        self.size += 1

    def root(self) -> bytes:
        """MTH(D[0:size]); SHA-256 of the empty string for the empty tree (RFC 9162 §2.1.1)."""
        if not self.edge:
            return hashlib.sha256(b"").digest()
        current = self.edge[-1][1]
        for _, left in reversed(self.edge[:-1]):
            current = node_hash(left, current)
        return current


def _check_hashes(proof: Sequence[bytes]) -> None:
    if any(len(p) != HASH_BYTES for p in proof):
        raise ProofError("a proof node is not a 32-byte hash")


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: verify that ``leaf`` (a leaf hash) is entry ``leaf_index`` of the tree of
    ``tree_size`` leaves whose root is ``root``, given the inclusion ``proof`` (leaf to root)."""
    # Step 1: "Compare leaf_index from the inclusion_proof_v2 structure against tree_size. If
    # leaf_index is greater than or equal to tree_size, then fail the proof verification."
    if not 0 <= leaf_index < tree_size:
        raise ProofError("leaf index is not below the tree size")
    if len(leaf) != HASH_BYTES:
        raise ProofError("the leaf hash is not 32 bytes")
    _check_hashes(proof)
    # Step 2: "Set fn to leaf_index and sn to tree_size - 1."  Step 3: "Set r to hash."
    fn, sn, r = leaf_index, tree_size - 1, leaf
    # Step 4: for each value p in the inclusion_path array:
    for p in proof:
        # 4a: "If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0:
            raise ProofError("the proof is longer than the path")
        # 4b: "If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn & 1 or fn == sn:
            r = node_hash(p, r)  # 4b.i: "Set r to HASH(0x01 || p || r)."
            # 4b.ii: "If LSB(fn) is not set, then right-shift both fn and sn equally until
            # either LSB(fn) is set or fn is 0."
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)  # "Otherwise: Set r to HASH(0x01 || r || p)."
        fn, sn = fn >> 1, sn >> 1  # 4c: "Finally, right-shift both fn and sn one time."
    # Step 5: "Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and
    # the root_hash are equal, then the log has proven the inclusion of hash."
    if sn != 0:
        raise ProofError("the proof is shorter than the path")
    if r != root:
        raise ProofError("the proof leads to another root")


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: verify that the tree of ``first`` leaves with root ``first_hash`` is a
    prefix of the tree of ``second`` leaves with root ``second_hash``.

    Equal sizes need an empty proof and equal roots. A tree of size 0 proves nothing (RFC 9162
    §2.1.4 defines proofs for 0 < first < second), so ``first == 0`` is refused: a verifier with no
    earlier tree has nothing to check and must not call this.
    """
    if first > second:
        raise ProofError("the first tree is larger than the second")
    if first == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if first == second:
        if proof:
            raise ProofError("equal tree sizes need an empty proof")
        if first_hash != second_hash:
            raise ProofError("equal tree sizes with different roots")
        return
    # Step 1: "If consistency_path is an empty array, stop and fail the proof verification."
    if not proof:
        raise ProofError("empty consistency proof")
    _check_hashes(proof)
    path = list(proof)
    # Step 2: "If first is an exact power of 2, then prepend first_hash to the consistency_path array."
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # Step 3: "Set fn to first - 1 and sn to second - 1."
    fn, sn = first - 1, second - 1
    # Step 4: "If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set."
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5: "Set both fr and sr to the first value in the consistency_path array."
    fr = sr = path[0]
    # Step 6: for each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # 6a: "If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0:
            raise ProofError("the consistency proof is longer than the path")
        # 6b: "If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)  # 6b.i: "Set fr to HASH(0x01 || c || fr)."
            sr = node_hash(c, sr)  # "Set sr to HASH(0x01 || c || sr)."
            # 6b.ii: "If LSB(fn) is not set, then right-shift both fn and sn equally until
            # either LSB(fn) is set or fn is 0."
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)  # "Otherwise: Set sr to HASH(0x01 || sr || c)."
        fn, sn = fn >> 1, sn >> 1  # 6c: "Finally, right-shift both fn and sn one time."
    # Step 7: "After completing iterating through the consistency_path array as described above,
    # verify that the fr calculated is equal to the first_hash supplied, that the sr calculated
    # is equal to the second_hash supplied, and that sn is 0."
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the path")
    if fr != first_hash:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_hash:
        raise ProofError("the consistency proof does not lead to the second root")
