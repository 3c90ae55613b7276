"""The RFC 6962 Merkle tree: frontier, proofs and their verification, against a reference."""

from __future__ import annotations

import hashlib

from audit.domain.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    root_of_leaves,
    verify_consistency,
    verify_inclusion,
)
from hypothesis import given
from hypothesis import strategies as st


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 written the slow, literal way."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def leaves(n: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(n)]


def test_known_small_trees() -> None:
    a, b, c = leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_of([a]) == a
    assert root_of([a, b, c]) == node_hash(node_hash(a, b), c)
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()


@given(st.integers(min_value=0, max_value=70))
def test_the_frontier_root_equals_the_reference_root_at_every_size(n: int) -> None:
    frontier = Frontier()
    for leaf in leaves(n):
        frontier.append(leaf)
    assert frontier.size == n
    assert frontier.root() == reference_root(leaves(n))
    assert len(frontier.nodes) == bin(n).count("1")
    assert Frontier.from_bytes(frontier.to_bytes()).root() == frontier.root()


@given(st.integers(min_value=1, max_value=70), st.data())
def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not(
    n: int, data: st.DataObject
) -> None:
    hashes = [leaf_hash(x) for x in leaves(n)]
    root = root_of(hashes)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = inclusion_proof(index, hashes)
    assert len(proof) <= n.bit_length()
    assert verify_inclusion(index, n, hashes[index], proof, root)
    assert not verify_inclusion(index, n, leaf_hash(b"other"), proof, root)
    if n > 1:
        assert not verify_inclusion((index + 1) % n, n, hashes[index], proof, root)
        tampered = [*proof]
        tampered[0] = bytes(32)
        assert not verify_inclusion(index, n, hashes[index], tampered, root)


@given(st.integers(min_value=1, max_value=40), st.data())
def test_consistency_proofs_between_sizes(n: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(x) for x in leaves(n)]
    m = data.draw(st.integers(min_value=1, max_value=n))
    proof = consistency_proof(m, hashes)
    assert verify_consistency(m, n, root_of(hashes[:m]), root_of(hashes), proof)
    if m < n:
        other = [*hashes[: m - 1], leaf_hash(b"changed"), *hashes[m:]]
        assert not verify_consistency(m, n, root_of(other[:m]), root_of(hashes), proof)


@given(st.integers(min_value=0, max_value=300))
def test_the_level_by_level_root_is_the_rfc_6962_root(n: int) -> None:
    assert root_of_leaves(leaves(n)) == reference_root(leaves(n))
