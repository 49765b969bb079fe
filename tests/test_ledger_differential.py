"""Differential tests: the tile store against the RFC 9162 reference and pymerkle.

Random trees (random batch boundaries, up to a few thousand leaves): every root
and proof equals the recursive reference in tests/reference.py and pymerkle's;
every single-bit change to a valid proof, index or size is rejected.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from ledger.errors import ConsistencyProofError, InclusionProofError
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from ledger.proof import verify_consistency, verify_inclusion
from ledger.sqlite import SQLiteTreeStore
from tests import reference

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _leaves(seed: int, n: int) -> list[bytes]:
    # Varied lengths, empty leaves included, deterministic per seed.
    return [hashlib.sha256(f"{seed}/{i}".encode()).digest()[: (i * 7 + seed) % 40] for i in range(n)]


@st.composite
def trees(draw: st.DrawFn, max_leaves: int = 3000) -> tuple[MerkleLog, list[bytes]]:
    seed = draw(st.integers(0, 2**16))
    batches = draw(st.lists(st.integers(1, 700), min_size=1, max_size=12))
    leaves = _leaves(seed, min(sum(batches), max_leaves))
    log = MerkleLog(SQLiteTreeStore(":memory:"))
    pos = 0
    for b in batches:
        if pos >= len(leaves):
            break
        log.append(leaves[pos : pos + b])
        pos += b
    return log, leaves


def _flips(data: bytes) -> list[bytes]:
    return [data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :] for i in range(len(data)) for bit in range(8)]


@SETTINGS
@given(trees(), st.data())
def test_roots_equal_reference_and_pymerkle(tree: tuple[MerkleLog, list[bytes]], data: st.DataObject) -> None:
    log, leaves = tree
    pm = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        pm.append_entry(leaf)
    sizes = {1, len(leaves), *data.draw(st.lists(st.integers(1, len(leaves)), max_size=8))}
    for size in sizes:
        want = reference.mth(leaves[:size])
        assert log.root(size) == want
        assert pm.get_root(size) == want


@SETTINGS
@given(trees(), st.data())
def test_inclusion_proofs_equal_reference_and_reject_every_flip(
    tree: tuple[MerkleLog, list[bytes]], data: st.DataObject
) -> None:
    log, leaves = tree
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = log.inclusion_proof(index, size)
    root = log.root(size)
    leaf_hash = SHA256.leaf(leaves[index])
    assert proof == reference.path(index, leaves[:size])
    pm = InmemoryTree(algorithm="sha256")
    for leaf in leaves[:size]:
        pm.append_entry(leaf)
    # pymerkle's path starts with the leaf's own hash; its index is 1-based.
    assert list(pm.prove_inclusion(index + 1, size).path[1:]) == proof
    verify_inclusion(SHA256, index, size, leaf_hash, proof, root)

    for i, h in enumerate(proof):
        for bad in _flips(h):
            with pytest.raises(InclusionProofError):
                verify_inclusion(SHA256, index, size, leaf_hash, [*proof[:i], bad, *proof[i + 1 :]], root)
    for bit in range(max(size.bit_length(), 1) + 1):
        other = index ^ (1 << bit)
        with pytest.raises(InclusionProofError):
            verify_inclusion(SHA256, other, size, leaf_hash, proof, root)
        # A proof binds to a size through the signed root of that size (the
        # checkpoint): a changed size is checked against that size's root.
        # Sizes the log never had have no root; receipts pin the size to the
        # checkpoint's (tests/test_receipt.py flips those bits).
        other_size = size ^ (1 << bit)
        if 0 < other_size <= len(leaves):
            with pytest.raises(InclusionProofError):
                verify_inclusion(SHA256, index, other_size, leaf_hash, proof, log.root(other_size))


@SETTINGS
@given(trees(), st.data())
def test_consistency_proofs_equal_reference_and_reject_every_flip(
    tree: tuple[MerkleLog, list[bytes]], data: st.DataObject
) -> None:
    log, leaves = tree
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = log.consistency_proof(size1, size2)
    root1, root2 = log.root(size1), log.root(size2)
    assert proof == (reference.proof(size1, leaves[:size2]) if size1 < size2 else [])
    verify_consistency(SHA256, size1, size2, root1, root2, proof)
    for i, h in enumerate(proof):
        for bad in _flips(h):
            with pytest.raises(ConsistencyProofError):
                verify_consistency(SHA256, size1, size2, root1, root2, [*proof[:i], bad, *proof[i + 1 :]])
    for bit in range(size2.bit_length() + 1):
        for s1, s2 in ((size1 ^ (1 << bit), size2), (size1, size2 ^ (1 << bit))):
            if (s1, s2) == (size1, size2) or not (0 < s1 <= len(leaves) and 0 < s2 <= len(leaves)):
                continue
            with pytest.raises(ConsistencyProofError):
                verify_consistency(SHA256, s1, s2, log.root(s1), log.root(s2), proof)
