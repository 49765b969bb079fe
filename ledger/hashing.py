"""RFC 9162 §2.1 Merkle tree hashing, behind a small interface.

The hash is a property of a log, fixed when the log is created: SHA-256 now; an
SM3 hasher (国密) can be added as another :class:`Hasher` without changing any
format, since every format names the algorithm and carries hashes as bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Protocol

# SPEC: RFC 9162 §2.1.1 "MTH({d(0)}) = HASH(0x00 || d(0))",
# "MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))"
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"


class Hasher(Protocol):
    """A Merkle tree hash: leaf and interior node functions of one algorithm."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    def empty_root(self) -> bytes: ...

    def leaf(self, data: bytes) -> bytes: ...

    def node(self, left: bytes, right: bytes) -> bytes: ...

    def parents(self, row: Sequence[bytes], start: int, end: int) -> list[bytes]: ...

    def leaves(self, datas: Sequence[bytes]) -> list[bytes]: ...


class SHA256Hasher:
    """RFC 9162 SHA-256 tree hashing."""

    name: Final = "sha256"
    size: Final = 32

    def empty_root(self) -> bytes:
        # SPEC: RFC 9162 §2.1.1 "MTH({}) = HASH()"
        return hashlib.sha256(b"").digest()

    def leaf(self, data: bytes) -> bytes:
        return hashlib.sha256(LEAF_PREFIX + data).digest()

    def node(self, left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(NODE_PREFIX + left + right).digest()

    def parents(self, row: Sequence[bytes], start: int, end: int) -> list[bytes]:
        """Hashes of the pairs (row[2k], row[2k+1]) for k in [start, end); hot path."""
        sha, prefix = hashlib.sha256, NODE_PREFIX
        return [sha(prefix + row[2 * k] + row[2 * k + 1]).digest() for k in range(start, end)]

    def leaves(self, datas: Sequence[bytes]) -> list[bytes]:
        """Leaf hashes of many entries; the hot path of appending."""
        sha = hashlib.sha256
        return [sha(LEAF_PREFIX + d).digest() for d in datas]


SHA256: Final = SHA256Hasher()

_HASHERS: Final[dict[str, SHA256Hasher]] = {SHA256.name: SHA256}


def hasher_named(name: str) -> SHA256Hasher:
    """The hasher a log's configuration names; raises KeyError for an unknown one."""
    return _HASHERS[name]


def fold_right(hasher: Hasher, hashes: Sequence[bytes]) -> bytes:
    """Root of a range given as its perfect subtrees from left to right.

    A range [a, b) whose left end is aligned splits into perfect subtrees of
    strictly decreasing size; RFC 9162's recursion hashes them from the right.
    Precondition: ``hashes`` is not empty.
    """
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = hasher.node(h, acc)
    return acc
