"""RFC 9162 inclusion and consistency proofs: plan, assemble, verify.

Pure functions of ints and bytes. Planning names the tree nodes a proof needs
(``inclusion_plan``, ``consistency_plan``); a store answers "give me these
hashes"; ``assemble`` folds them into the proof. Verification computes a root
from a proof (``root_from_inclusion_proof``, ``roots_from_consistency_proof``)
separately from comparing it (``verify_inclusion``, ``verify_consistency``).

A node id ``(level, index)`` names the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from ledger.errors import ConsistencyProofError, InclusionProofError, TreeSizeError
from ledger.hashing import Hasher, fold_right

NodeID = tuple[int, int]
# One proof element: the perfect subtrees of its range, left to right. A range
# at the tree's right edge is not perfect and needs several; all others one.
PlanEntry = tuple[NodeID, ...]


def perfect_subtrees(begin: int, end: int) -> PlanEntry:
    """Split the leaf range [begin, end) into maximal aligned perfect subtrees."""
    out: list[NodeID] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        out.append((level, begin >> level))
        begin += 1 << level
    return tuple(out)


def _split(width: int) -> int:
    # SPEC: RFC 9162 §2.1.1 "k be the largest power of two smaller than n"
    return 1 << ((width - 1).bit_length() - 1)


def root_plan(size: int) -> PlanEntry:
    """The perfect subtrees whose right fold is the root of a tree of ``size``."""
    if size < 0:
        raise TreeSizeError(f"tree size {size} is negative")
    return perfect_subtrees(0, size)


def inclusion_plan(index: int, size: int) -> list[PlanEntry]:
    """Nodes of the RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf end first.

    Raises TreeSizeError unless 0 <= index < size.
    """
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is outside a tree of size {size}")
    plan: list[PlanEntry] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            plan.append(perfect_subtrees(lo + k, hi))
            hi = lo + k
        else:
            plan.append(perfect_subtrees(lo, lo + k))
            lo += k
    plan.reverse()
    return plan


def consistency_plan(size1: int, size2: int) -> list[PlanEntry]:
    """Nodes of the RFC 9162 §2.1.4.1 PROOF(size1, D[size2]).

    Raises TreeSizeError unless 0 < size1 <= size2 (equal sizes: empty proof).
    """
    if not 0 < size1 <= size2:
        raise TreeSizeError(f"no consistency proof from size {size1} to size {size2}")
    plan: list[PlanEntry] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            plan.append(perfect_subtrees(lo + k, hi))
            hi = lo + k
        else:
            plan.append(perfect_subtrees(lo, lo + k))
            m -= k
            lo += k
            complete = False
    # SPEC: RFC 9162 §2.1.4.1 "SUBPROOF(m, D[m], false) = {MTH(D[m])}"
    if not complete:
        plan.append(perfect_subtrees(lo, hi))
    plan.reverse()
    return plan


def plan_nodes(plan: Sequence[PlanEntry]) -> list[NodeID]:
    """Every distinct node id a plan needs, in first-use order."""
    return list(dict.fromkeys(node for entry in plan for node in entry))


def assemble(hasher: Hasher, plan: Sequence[PlanEntry], hashes: Mapping[NodeID, bytes]) -> list[bytes]:
    """Fold fetched node hashes into the proof the plan describes."""
    return [fold_right(hasher, [hashes[node] for node in entry]) for entry in plan]


def _check_lengths(hasher: Hasher, proof: Sequence[bytes], error: type[Exception]) -> None:
    for i, h in enumerate(proof):
        if len(h) != hasher.size:
            raise error(f"proof hash {i} has {len(h)} bytes, not {hasher.size}")


def root_from_inclusion_proof(hasher: Hasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a proof leads to from ``leaf_hash`` at ``index`` of ``size``.

    Raises InclusionProofError when the proof cannot belong to that position
    (wrong length, index outside the tree); it does not compare roots.
    """
    # SPEC: RFC 9162 §2.1.3.2, steps numbered as there.
    if not 0 <= index < size:  # step 1
        raise InclusionProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf_hash) != hasher.size:
        raise InclusionProofError(f"leaf hash has {len(leaf_hash)} bytes, not {hasher.size}")
    _check_lengths(hasher, proof, InclusionProofError)
    fn, sn, r = index, size - 1, leaf_hash  # steps 2-3
    for p in proof:  # step 4
        if sn == 0:  # 4.1
            raise InclusionProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:  # 4.2
            r = hasher.node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:  # 4.3
            r = hasher.node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 5
        raise InclusionProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    hasher: Hasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Return None when the proof shows ``leaf_hash`` at ``index`` under ``root``.

    Raises InclusionProofError otherwise.
    """
    computed = root_from_inclusion_proof(hasher, index, size, leaf_hash, proof)
    if not hmac.compare_digest(computed, root):
        raise InclusionProofError(
            f"inclusion proof for leaf {index} leads to a different root than the tree of size {size}"
        )


def roots_from_consistency_proof(
    hasher: Hasher, size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The (old root, new root) a consistency proof from size1 to size2 leads to.

    Precondition 0 < size1 < size2; ``root1`` is used only where RFC 9162 puts
    it into the path (size1 a power of two). Raises ConsistencyProofError.
    """
    # SPEC: RFC 9162 §2.1.4.2, steps numbered as there.
    if not 0 < size1 < size2:
        raise ConsistencyProofError(f"no consistency proof from size {size1} to size {size2}")
    if not proof:  # step 1
        raise ConsistencyProofError("consistency proof is empty")
    _check_lengths(hasher, proof, ConsistencyProofError)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ConsistencyProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = hasher.node(c, fr)
            sr = hasher.node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hasher.node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 7, the size part
        raise ConsistencyProofError("consistency proof is shorter than the tree is deep")
    return fr, sr


def verify_consistency(
    hasher: Hasher, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Return None when the tree of size2 and root2 extends size1 and root1.

    Raises ConsistencyProofError otherwise. As transparency-dev/merkle: a proof
    from size 0 is refused; equal sizes need an empty proof and equal roots.
    """
    if size2 < size1:
        raise ConsistencyProofError(f"size {size2} is smaller than size {size1}")
    if size1 == 0:
        raise ConsistencyProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ConsistencyProofError("equal sizes need an empty consistency proof")
        if not hmac.compare_digest(root1, root2):
            raise ConsistencyProofError(f"two different roots for the same size {size1}")
        return
    fr, sr = roots_from_consistency_proof(hasher, size1, size2, root1, proof)
    # step 7: "verify that fr is equal to first_hash ... sr is equal to second_hash"
    if not hmac.compare_digest(fr, root1):
        raise ConsistencyProofError(f"consistency proof does not lead to the old root of size {size1}")
    if not hmac.compare_digest(sr, root2):
        raise ConsistencyProofError(f"consistency proof does not lead to the new root of size {size2}")
