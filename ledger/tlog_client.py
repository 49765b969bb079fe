"""A c2sp.org/tlog-tiles client: read a whole log from any tlog-tiles source and check it.

Pure but for the ``fetch`` function it is given (path -> bytes: an HTTP GET, an S3 GET, a file
read), so the same code reads a node's ``/tlog/`` API and a bucket the node publishes to.

SPEC: c2sp.org/tlog-tiles "<prefix>/checkpoint", "<prefix>/tile/<L>/<N>[.p/<W>]",
"<prefix>/tile/entries/<N>[.p/<W>]"; "N is split into 3-digit path elements, all but the last
prefixed with x"; a tile at level L holds the hashes of tree level 8L, 256 to a full tile.

``read_log`` checks, in order: (1) the checkpoint is signed by the log's key; (2) every entry
bundle of its size unpacks to the bundle's width; (3) every level-0 tile holds the hashes of those
entries; (4) every tile of level L+1 holds the roots of the 256-hash spans of level L; (5) the root
computed from the entries is the checkpoint's. Raises LedgerError (MalformedError on a
bad object, a VerificationError-like TreeSizeError subclass on a mismatch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.compact import CompactRange
from ledger.errors import LedgerError
from ledger.hashing import SHA256, Hasher
from ledger.note import Verifier
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, level_count, tile_width, unpack_entries

Fetch = Callable[[str], bytes]


class TileMismatchError(LedgerError):
    """A tile, bundle or root read from a tlog-tiles source does not match what the entries give."""

    code = "tile_mismatch"


def index_path(n: int) -> str:
    """``1234067`` -> ``x001/x234/067`` (c2sp.org/tlog-tiles)."""
    digits = f"{n:d}"
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile_path(level: int, index: int, width: int) -> str:
    """The path of hash tile (level, index) of ``width`` hashes (partial below 256)."""
    return f"tile/{level}/{index_path(index)}" + (f".p/{width}" if width < TILE_WIDTH else "")


def entries_path(index: int, width: int) -> str:
    """The path of entry bundle ``index`` of ``width`` entries (partial below 256)."""
    return f"tile/entries/{index_path(index)}" + (f".p/{width}" if width < TILE_WIDTH else "")


def paths_for(old: int, new: int) -> list[tuple[str, int, int]]:
    """(path, level or -1 for entries, index) of every object a log of ``new`` leaves has that a log
    of ``old`` leaves did not: full tiles that became full, and partial tiles of the new size."""
    out: list[tuple[str, int, int]] = []
    if new <= old:
        return out
    for index in range(old // TILE_WIDTH, -(-new // TILE_WIDTH)):
        out.append((entries_path(index, tile_width(new, (0, index))), -1, index))
    level = 0
    while level_count(new, level) > 0:
        first, count = level_count(old, level) // TILE_WIDTH, level_count(new, level)
        for index in range(first, -(-count // TILE_WIDTH)):
            width = tile_width(new, (level, index))
            if width == tile_width(old, (level, index)):
                continue  # unchanged (full at both sizes)
            out.append((tile_path(level, index, width), level, index))
        level += 1
    return out


@dataclass(frozen=True)
class TlogLog:
    """A log as read and checked: its checkpoint and every entry."""

    checkpoint: Checkpoint
    note: str
    entries: list[bytes]


def read_log(fetch: Fetch, log_keys: Sequence[Verifier], hasher: Hasher = SHA256) -> TlogLog:
    """Read and check a whole log from a tlog-tiles source (steps in the module docstring)."""
    note = fetch("checkpoint").decode("utf-8")
    checkpoint, _ = open_checkpoint(note, log_keys)  # 1
    size = checkpoint.size
    entries: list[bytes] = []
    for index in range(-(-size // TILE_WIDTH)):  # 2
        width = tile_width(size, (0, index))
        bundle = unpack_entries(fetch(entries_path(index, width)))
        if len(bundle) != width:
            raise TileMismatchError(f"entry bundle {index} holds {len(bundle)} entries, not {width}")
        entries.extend(bundle)
    row = [hasher.leaf(e) for e in entries]
    level = 0
    while len(row) > 0:  # 3, 4: each level's tiles against the hashes the level below gives
        for index in range(-(-len(row) // TILE_WIDTH)):
            width = tile_width(size, (level, index))
            got = fetch(tile_path(level, index, width))
            want = b"".join(row[index * TILE_WIDTH : index * TILE_WIDTH + width])
            if got != want:
                raise TileMismatchError(f"tile {level}/{index} (width {width}) does not hold the log's hashes")
        row = [_span_root(hasher, row[i : i + TILE_WIDTH]) for i in range(0, len(row) - TILE_WIDTH + 1, TILE_WIDTH)]
        level += 1
    compact = CompactRange(hasher)
    compact.extend([hasher.leaf(e) for e in entries])
    if compact.root() != checkpoint.root_hash:  # 5
        raise TileMismatchError("the entries' root is not the checkpoint's")
    return TlogLog(checkpoint, note, entries)


def _span_root(hasher: Hasher, hashes: list[bytes]) -> bytes:
    """The root of a full span of 256 hashes (8 levels up)."""
    for _ in range(TILE_HEIGHT):
        hashes = [hasher.node(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]
