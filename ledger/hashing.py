"""RFC 9162 §2.1 Merkle tree hashing, behind a small interface.

The hash is a property of a log, fixed when the log is created: SHA-256, or SM3
(国密, GB/T 32905) as another :class:`Hasher` with the same RFC 9162 shapes — the
0x00 leaf and 0x01 node prefixes, 32-byte hashes — so no format changes: every
format names the algorithm and carries hashes as bytes. ``hasher_named`` is the
one registry from a configured name to a hasher.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
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


@cache
def sm3_function() -> Callable[[bytes], bytes]:
    """SM3 of bytes: from the standard library (OpenSSL 1.1.1+ has it), else from the ``gm`` extra."""
    try:
        base = hashlib.new("sm3")
    except ValueError:  # an OpenSSL built without SM3
        try:
            from gmssl_pyx import sm3_hash
        except ImportError as exc:
            raise KeyError("sm3: this Python's OpenSSL has no SM3; install sifa[gm]") from exc

        def gmssl_sm3(data: bytes) -> bytes:
            return bytes(sm3_hash(data))

        return gmssl_sm3

    def sm3(data: bytes) -> bytes:
        h = base.copy()  # copying a fresh context skips hashlib.new's name lookup on the hot path
        h.update(data)
        return h.digest()

    return sm3


class SM3Hasher:
    """RFC 9162 tree hashing with SM3 (GB/T 32905-2016) in place of SHA-256."""

    name: Final = "sm3"
    size: Final = 32

    def __init__(self) -> None:
        self._sm3 = sm3_function()

    def empty_root(self) -> bytes:
        # SPEC: RFC 9162 §2.1.1 "MTH({}) = HASH()"
        return self._sm3(b"")

    def leaf(self, data: bytes) -> bytes:
        return self._sm3(LEAF_PREFIX + data)

    def node(self, left: bytes, right: bytes) -> bytes:
        return self._sm3(NODE_PREFIX + left + right)

    def parents(self, row: Sequence[bytes], start: int, end: int) -> list[bytes]:
        """Hashes of the pairs (row[2k], row[2k+1]) for k in [start, end)."""
        sm3, prefix = self._sm3, NODE_PREFIX
        return [sm3(prefix + row[2 * k] + row[2 * k + 1]) for k in range(start, end)]

    def leaves(self, datas: Sequence[bytes]) -> list[bytes]:
        """Leaf hashes of many entries."""
        sm3 = self._sm3
        return [sm3(LEAF_PREFIX + d) for d in datas]


_FACTORIES: Final[dict[str, Callable[[], Hasher]]] = {"sha256": lambda: SHA256, "sm3": SM3Hasher}


def hasher_names() -> tuple[str, ...]:
    """The names a log's configuration may give its hash."""
    return tuple(_FACTORIES)


def hasher_named(name: str) -> Hasher:
    """The hasher a log's configuration names ("sha256" or "sm3").

    Raises KeyError for an unknown name, or for "sm3" where neither OpenSSL nor
    the ``gm`` extra provides SM3.
    """
    return _FACTORIES[name]()


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
