"""Compact ranges: the root of a growing log in O(log n) memory.

Pure: hashes in, hashes out. A compact range over leaves [begin, end) keeps only
the hashes of the minimal set of perfect subtrees that cover it, left to right —
at most two per tree level, one per set bit of ``end`` when ``begin`` is 0. Appending
a leaf hash merges it with the subtrees it completes; the RFC 9162 root of [0, n)
folds the kept hashes from the right (``fold_right``). ``sifa audit`` streams every
leaf of the log through one and reads off the root of each checkpoint's size,
without holding the tree.

The idea and the merge rule follow transparency-dev/merkle's ``compact.Range``
(compact/range.go, docs/compact_ranges.md): a node ending at ``end`` is merged
with its left sibling while that sibling lies wholly inside the range.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import TreeSizeError
from ledger.hashing import Hasher, fold_right
from ledger.proof import perfect_subtrees


class CompactRange:
    """The perfect-subtree hashes covering leaves [begin, end) of one tree."""

    __slots__ = ("_begin", "_end", "_hasher", "_hashes")

    def __init__(self, hasher: Hasher, begin: int = 0) -> None:
        """An empty range that grows from leaf ``begin``. Raises TreeSizeError if it is negative."""
        if begin < 0:
            raise TreeSizeError(f"a range cannot begin at leaf {begin}")
        self._hasher = hasher
        self._begin = begin
        self._end = begin
        self._hashes: list[bytes] = []

    @property
    def begin(self) -> int:
        return self._begin

    @property
    def end(self) -> int:
        return self._end

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree hashes, left to right (the subtrees ``perfect_subtrees(begin, end)`` names)."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Extend the range by the leaf at index ``end``."""
        self._push(0, leaf_hash)

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """Extend the range by the leaves at ``end``, ``end + 1``, …; the hot path.

        Works a level at a time, hashing each level's pairs in one pass, as
        ``ledger.tiles.integrate`` does: each new node is hashed once.
        """
        stack, begin, parents = self._hashes, self._begin, self._hasher.parents
        tail: list[bytes] = []  # right-edge subtrees the batch leaves behind, lowest level first
        row = list(leaf_hashes)
        start, level = self._end, 0  # row holds the nodes [start, start + len(row)) of this level
        self._end += len(row)
        while row:
            if start & 1:
                if (start - 1) << level >= begin:
                    # row[0] is a right child and its left sibling lies in the range: the last kept subtree.
                    row.insert(0, stack.pop())
                    start -= 1
                else:
                    # Its sibling lies before ``begin``: row[0] is a subtree of the range's left edge.
                    stack.append(row.pop(0))
                    start += 1
            if len(row) & 1:
                tail.append(row.pop())  # no right sibling yet
            row = parents(row, 0, len(row) >> 1)
            start >>= 1
            level += 1
        stack.extend(reversed(tail))

    def append_range(self, other: CompactRange) -> None:
        """Merge in ``other``, the range that starts where this one ends (of the same hasher).

        Raises TreeSizeError when ``other`` does not begin at ``end``.
        """
        if other._begin != self._end:
            raise TreeSizeError(f"a range ending at {self._end} cannot take one beginning at {other._begin}")
        for (level, _), h in zip(perfect_subtrees(other._begin, other._end), other._hashes, strict=True):
            self._push(level, h)

    def root(self) -> bytes:
        """The RFC 9162 root of the tree of size ``end``. Raises TreeSizeError unless ``begin`` is 0."""
        if self._begin:
            raise TreeSizeError(f"a range beginning at leaf {self._begin} has no tree root")
        if not self._hashes:
            # SPEC: RFC 9162 §2.1.1 "MTH({}) = HASH()"
            return self._hasher.empty_root()
        return fold_right(self._hasher, self._hashes)

    def _push(self, level: int, h: bytes) -> None:
        """Add the perfect subtree of ``level`` that starts at ``end``."""
        stack, node = self._hashes, self._hasher.node
        index = self._end >> level
        self._end += 1 << level
        # A right child (odd index) merges with its left sibling while the sibling lies inside the range;
        # that sibling is then the last kept subtree (compact/range.go, appendImpl).
        while index & 1 and (index - 1) << level >= self._begin:
            h = node(stack.pop(), h)
            index >>= 1
            level += 1
        stack.append(h)
