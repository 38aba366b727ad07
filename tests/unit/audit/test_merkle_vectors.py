"""RFC 6962 / RFC 9162 proofs against the transparency-dev/merkle vectors (tests/fixtures/merkle).

Given every vector, when the client's verifier checks it, then it accepts exactly the cases the
vectors accept; and when the server generates proofs for the vectors' tree, then they equal the
vectors' happy-path proofs and verify.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from client.audit_merkle import ProofError, RootBuilder, leaf_hash, verify_consistency, verify_inclusion
from shared_code.audit import merkle

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "merkle" / "testdata"
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]


def _cases(kind: str) -> list[tuple[str, dict]]:
    paths = sorted((VECTORS / kind).rglob("*.json"))
    return [(str(p.relative_to(VECTORS)), json.loads(p.read_text(encoding="utf-8"))) for p in paths]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict) -> list[bytes]:
    return [_b64(p) for p in case["proof"] or []]


def test_the_fixture_holds_every_vector_of_both_kinds():
    assert len(_cases("inclusion")) > 60 and len(_cases("consistency")) > 90


@pytest.mark.parametrize("name, case", _cases("inclusion"), ids=lambda v: v if isinstance(v, str) else "")
def test_client_inclusion_verifier_agrees_with_the_vector(name, case):
    def verify():
        verify_inclusion(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case), _b64(case["root"]))

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


@pytest.mark.parametrize("name, case", _cases("consistency"), ids=lambda v: v if isinstance(v, str) else "")
def test_client_consistency_verifier_agrees_with_the_vector(name, case):
    def verify():
        verify_consistency(case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case))

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


def _node_source(leaves: list[bytes]):
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]

    def node(level: int, index: int) -> bytes:
        return merkle.subtree_root(hashes[index << level:(index + 1) << level])

    return node


def _happy(kind: str) -> list[dict]:
    return [case for name, case in _cases(kind) if name.endswith("happy-path.json") and "/additional" not in name]


@pytest.mark.parametrize("case", _happy("inclusion"), ids=lambda c: f"{c['leafIdx']}-{c['treeSize']}")
def test_server_inclusion_proofs_equal_the_vectors(case):
    size = case["treeSize"]
    node = _node_source(LEAVES[:size])
    assert merkle.inclusion_proof(node, case["leafIdx"], size) == _proof(case)
    assert merkle.range_hash(node, 0, size) == _b64(case["root"])


@pytest.mark.parametrize("case", _happy("consistency"), ids=lambda c: f"{c['size1']}-{c['size2']}")
def test_server_consistency_proofs_equal_the_vectors(case):
    node = _node_source(LEAVES[:case["size2"]])
    if case["size1"] == 0:
        with pytest.raises(ValueError):
            merkle.consistency_proof(node, 0, case["size2"])
        return
    assert merkle.consistency_proof(node, case["size1"], case["size2"]) == _proof(case)


def test_server_proofs_for_every_pair_of_sizes_verify_with_the_client():
    leaves = [f"entry {i}".encode() for i in range(70)]
    node = _node_source(leaves)
    tree = merkle.CompactRange.empty()
    roots = [merkle.EMPTY_ROOT]
    for leaf in leaves:
        tree.append(merkle.leaf_hash(leaf))
        roots.append(tree.root())
    for size in range(1, len(leaves) + 1):
        builder = RootBuilder()
        for leaf in leaves[:size]:
            builder.add(leaf_hash(leaf))
        assert builder.root() == roots[size] == merkle.range_hash(node, 0, size)
        for index in range(size):
            verify_inclusion(index, size, leaf_hash(leaves[index]), merkle.inclusion_proof(node, index, size), roots[size])
        for old in range(1, size + 1):
            verify_consistency(old, size, roots[old], roots[size], merkle.consistency_proof(node, old, size))


def test_compact_range_reports_completed_nodes_and_resumes_in_the_client():
    tree = merkle.CompactRange.empty()
    completed = [tree.append(merkle.leaf_hash(bytes([i]))) for i in range(4)]
    assert [[(lvl, idx) for lvl, idx, _ in c] for c in completed] == [[(0, 0)], [(0, 1), (1, 0)], [(0, 2)],
                                                                         [(0, 3), (1, 1), (2, 0)]]
    builder = RootBuilder.resume(tree.size, tree.nodes)
    builder.add(leaf_hash(b"x"))
    tree.append(merkle.leaf_hash(b"x"))
    assert builder.root() == tree.root()
    with pytest.raises(ProofError):
        RootBuilder.resume(5, tree.nodes[:1])
