"""Tiles of complete subtree hashes, and integration of new leaves into them.

Pure: bytes and ints in, bytes and ints out. A tile covers 8 levels of the tree,
as in c2sp.org/tlog-tiles: tile (L, N) holds the hashes at tree level 8*L with
indices 256*N .. 256*N+255 (its bottom row, what tlog-tiles serves). sifa also
keeps the tile's interior rows, so every complete subtree hash of the tree is a
lookup and a proof costs a few tile reads and no hashing.

Stored form of a tile of width w (1..256): rows r = 0..7 concatenated, row r
holding the ``w >> r`` complete nodes at height r inside the tile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

from ledger.errors import TreeSizeError
from ledger.hashing import Hasher

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TileID = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Tile:
    """One stored tile: its width and the concatenated rows of hashes."""

    width: int
    data: bytes
    hash_size: int = 32

    def node(self, height: int, position: int) -> bytes:
        """Hash of the node at ``height`` (0..7) and ``position`` in this tile.

        Raises TreeSizeError when that node is not complete in this tile.
        """
        if not (0 <= height < TILE_HEIGHT and 0 <= position < self.width >> height):
            raise TreeSizeError(f"node {height}/{position} is not in a tile of width {self.width}")
        offset = rows_length_before(self.width, height) + position
        return self.data[offset * self.hash_size : (offset + 1) * self.hash_size]

    def bottom(self) -> bytes:
        """The tile's bottom row, the bytes c2sp.org/tlog-tiles serves."""
        return self.data[: self.width * self.hash_size]

    def rows(self) -> list[list[bytes]]:
        """The rows as lists of hashes, for extending the tile."""
        out: list[list[bytes]] = []
        offset, hs = 0, self.hash_size
        for r in range(TILE_HEIGHT):
            n = self.width >> r
            out.append([self.data[(offset + i) * hs : (offset + i + 1) * hs] for i in range(n)])
            offset += n
        return out


def rows_length_before(width: int, height: int) -> int:
    return sum(width >> r for r in range(height))


def locate(level: int, index: int) -> tuple[TileID, int, int]:
    """Where node (level, index) of the tree lives: (tile id, height, position)."""
    tile_level, height = divmod(level, TILE_HEIGHT)
    per_tile = TILE_WIDTH >> height
    tile_index, position = divmod(index, per_tile)
    return (tile_level, tile_index), height, position


def level_count(size: int, tile_level: int) -> int:
    """Complete nodes at tree level 8*tile_level in a tree of ``size`` leaves."""
    return size >> (TILE_HEIGHT * tile_level)


def tile_width(size: int, tile: TileID) -> int:
    """The width tile (L, N) has in a tree of ``size`` leaves (0: absent)."""
    count = level_count(size, tile[0]) - tile[1] * TILE_WIDTH
    return max(0, min(TILE_WIDTH, count))


@dataclass(frozen=True, slots=True)
class Integration:
    """What appending leaves changes: the new size and the tiles to write."""

    size: int
    tiles: dict[TileID, Tile]


def _extend(hasher: Hasher, rows: list[list[bytes]], chunk: Sequence[bytes]) -> None:
    rows[0].extend(chunk)
    for r in range(1, TILE_HEIGHT):
        below, row = rows[r - 1], rows[r]
        row.extend(hasher.parents(below, len(row), len(below) >> 1))


def _pack(rows: list[list[bytes]], hash_size: int) -> Tile:
    return Tile(len(rows[0]), b"".join(chain.from_iterable(rows)), hash_size)


def integrate(
    hasher: Hasher,
    size: int,
    leaf_hashes: Sequence[bytes],
    read_tile: Callable[[TileID], Tile],
) -> Integration:
    """Append ``leaf_hashes`` to a tree of ``size``: the tiles to write.

    ``read_tile`` is asked only for the partial right-edge tiles the new leaves
    extend (at most one per level). Every other tile written is new.
    """
    writes: dict[TileID, Tile] = {}
    incoming: Sequence[bytes] = leaf_hashes
    level = 0
    while incoming:
        start = level_count(size, level)
        tile_index, offset = divmod(start, TILE_WIDTH)
        rows = read_tile((level, tile_index)).rows() if offset else [[] for _ in range(TILE_HEIGHT)]
        parents: list[bytes] = []
        pos = 0
        while pos < len(incoming):
            take = min(TILE_WIDTH - offset, len(incoming) - pos)
            _extend(hasher, rows, incoming[pos : pos + take])
            writes[(level, tile_index)] = _pack(rows, hasher.size)
            if offset + take == TILE_WIDTH:
                top = rows[TILE_HEIGHT - 1]
                parents.append(hasher.node(top[0], top[1]))
            pos += take
            tile_index += 1
            offset = 0
            rows = [[] for _ in range(TILE_HEIGHT)]
        incoming = parents
        level += 1
    return Integration(size + len(leaf_hashes), writes)


def tiles_for(nodes: Iterable[tuple[int, int]]) -> set[TileID]:
    """The tiles holding the given node ids."""
    return {locate(level, index)[0] for level, index in nodes}


# Entry bundles: c2sp.org/tlog-tiles "a sequence of big-endian uint16
# length-prefixed log entries"; bundle N holds entries 256*N .. 256*N+255.
MAX_ENTRY_SIZE = 0xFFFF
_U16 = [n.to_bytes(2, "big") for n in range(MAX_ENTRY_SIZE + 1)]


def pack_entries(entries: Iterable[bytes]) -> bytes:
    """Length-prefix entries the way a tlog-tiles entry bundle holds them."""
    return b"".join([_U16[len(e)] + e for e in entries])


def unpack_entries(bundle: bytes) -> list[bytes]:
    """The entries of a bundle; raises ValueError on a truncated bundle."""
    out: list[bytes] = []
    pos = 0
    while pos < len(bundle):
        if pos + 2 > len(bundle):
            raise ValueError("entry bundle ends inside a length prefix")
        n = int.from_bytes(bundle[pos : pos + 2], "big")
        pos += 2
        if pos + n > len(bundle):
            raise ValueError("entry bundle ends inside an entry")
        out.append(bundle[pos : pos + n])
        pos += n
    return out
