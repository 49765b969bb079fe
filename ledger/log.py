"""A court's verifiable log: a tree store driven by the pure core.

``MerkleLog`` appends entries (one atomic batch each), and answers roots,
inclusion and consistency proofs for any past size with a handful of tile
reads: plan the nodes (ledger.proof), fetch their tiles, assemble.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import LeafTooLargeError, TreeSizeError
from ledger.evm import AnchorPart
from ledger.hashing import SHA256, Hasher, fold_right
from ledger.keys import LABEL as KEY_LABEL
from ledger.keys import KeyHistory
from ledger.note import Note, Signer
from ledger.proof import NodeID, assemble, consistency_plan, inclusion_plan, plan_nodes, root_plan
from ledger.receipt import Receipt
from ledger.store import TreeConflictError, TreeState, TreeStore
from ledger.tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileID,
    integrate,
    level_count,
    locate,
    pack_entries,
    tiles_for,
    unpack_entries,
)
from ledger.timestamp import TimestampPart


class MerkleLog:
    """An append-only RFC 9162 log over a :class:`TreeStore`."""

    def __init__(self, store: TreeStore, hasher: Hasher = SHA256) -> None:
        self.store = store
        self.hasher = hasher

    @property
    def size(self) -> int:
        return self.store.state().size

    def append(
        self,
        entries: Sequence[bytes],
        cursor: str | None = None,
        labels: Sequence[Sequence[str]] = (),
        signer: Signer | None = None,
        *,
        base: TreeState | None = None,
        leaf_hashes: Sequence[bytes] | None = None,
    ) -> int:
        """Append entries as one batch; return the index of the first.

        ``base`` is the tree state (size and cursor) the caller read and made the entries for
        (their sequence numbers, their chains): the batch commits only if the tree is still in
        that state — compare-and-set, so a stale writer writes nothing. It is required with a
        ``cursor``; without one (entries that depend on no position: tests, rebuilds) the state
        is read here. ``cursor`` (the upstream position of the last entry), ``labels`` (per entry,
        names to find it by) and, with a ``signer``, the signed checkpoint of the new size are
        committed in the same transaction (one fsync, where appending and then signing took two).
        ``leaf_hashes``: the entries' leaf hashes by this log's hasher, where the caller has them (the
        sealer chains each dossier's leaves by them), so they are not computed twice.
        Raises LeafTooLargeError for an entry over 65535 bytes and TreeConflictError if the tree
        is no longer at ``base``.
        """
        if entries and max(map(len, entries)) > MAX_ENTRY_SIZE:
            i = next(i for i, e in enumerate(entries) if len(e) > MAX_ENTRY_SIZE)
            raise LeafTooLargeError(f"entry {i} has {len(entries[i])} bytes; a leaf holds at most {MAX_ENTRY_SIZE}")
        if base is None:
            if cursor is not None:
                raise ValueError("an append that moves the cursor must name the state it was made for (base)")
            base = self.store.state()
        size = base.size
        if not entries:
            return size
        try:
            edge = self._right_edge(size)
            if leaf_hashes is None:
                leaf_hashes = self.hasher.leaves(entries)
            elif len(leaf_hashes) != len(entries):
                raise ValueError("one leaf hash per entry")
            integration = integrate(self.hasher, size, leaf_hashes, edge.__getitem__)
            bundles = _bundle_writes(size, entries, self.store.read_bundles)
        except (KeyError, ValueError, IndexError) as exc:
            # Tiles read after the tree moved on from ``base`` do not fit it: a conflict, not damage.
            if self.store.state() != base:
                raise TreeConflictError(f"the tree moved on from size {size} while this batch was planned") from exc
            raise
        pairs = [(label, size + i) for i, names in enumerate(labels) for label in names]
        note = None
        if signer is not None:
            root = self._root(integration.size, integration.tiles)
            note = sign_checkpoint(Checkpoint(signer.name, integration.size, root), signer).to_text()
        self.store.commit(base, integration.size, cursor, integration.tiles, bundles, pairs, note)
        return size

    def find(self, label: str) -> list[int]:
        """Indices of the leaves appended under ``label``, ascending."""
        return self.store.find(label)

    def labels_at(self, index: int) -> list[str]:
        """The labels leaf ``index`` was appended under."""
        return self.store.labels_at(index)

    def last(self, label: str) -> int | None:
        """The highest leaf index under ``label``, if any."""
        found = self.store.find(label, last=True)
        return found[0] if found else None

    def _right_edge(self, size: int) -> dict[TileID, Tile]:
        ids = []
        level = 0
        while count := level_count(size, level):
            if count % TILE_WIDTH:
                ids.append((level, count // TILE_WIDTH))
            level += 1
        return self.store.read_tiles(ids)

    def _check_size(self, size: int) -> None:
        current = self.size
        if not 0 <= size <= current:
            raise TreeSizeError(f"tree size {size} is beyond the log's size {current}")

    def _hashes(self, nodes: Iterable[NodeID], written: Mapping[TileID, Tile] | None = None) -> dict[NodeID, bytes]:
        """Node hashes from the stored tiles, or from ``written`` (tiles about to be committed)."""
        nodes = list(nodes)
        needed = tiles_for(nodes)
        tiles = {t: written[t] for t in needed if written and t in written}
        if len(tiles) < len(needed):
            tiles.update(self.store.read_tiles(needed - tiles.keys()))
        out = {}
        for level, index in nodes:
            tile_id, height, position = locate(level, index)
            out[(level, index)] = tiles[tile_id].node(height, position)
        return out

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the tree at ``size`` (default: now). Raises TreeSizeError."""
        if size is None:
            size = self.size
        else:
            self._check_size(size)
        return self._root(size)

    def _root(self, size: int, written: Mapping[TileID, Tile] | None = None) -> bytes:
        if size == 0:
            return self.hasher.empty_root()
        plan = root_plan(size)
        hashes = self._hashes(plan, written)
        return fold_right(self.hasher, [hashes[n] for n in plan])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``."""
        self._check_size(size)
        plan = inclusion_plan(index, size)
        return assemble(self.hasher, plan, self._hashes(plan_nodes(plan)))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2``."""
        self._check_size(size2)
        plan = consistency_plan(size1, size2)
        return assemble(self.hasher, plan, self._hashes(plan_nodes(plan)))

    def leaf_hash(self, index: int) -> bytes:
        """The stored leaf hash of ``index``. Raises TreeSizeError."""
        if not 0 <= index < self.size:
            raise TreeSizeError(f"leaf index {index} is outside a tree of size {self.size}")
        return self._hashes([(0, index)])[(0, index)]

    def entries(self, start: int, end: int) -> list[bytes]:
        """The entries (leaf data) of indices [start, end). Raises TreeSizeError."""
        if not 0 <= start <= end <= self.size:
            raise TreeSizeError(f"entries {start}..{end} are outside a tree of size {self.size}")
        first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
        bundles = self.store.read_bundles(range(first, last + 1)) if end > start else {}
        out: list[bytes] = []
        for b in range(first, last + 1 if end > start else first):
            out.extend(unpack_entries(bundles[b]))
        offset = start - first * TILE_WIDTH
        return out[offset : offset + end - start]

    def entry(self, index: int) -> bytes:
        return self.entries(index, index + 1)[0]

    def sign_checkpoint(self, signer: Signer, extensions: Sequence[str] = ()) -> Note:
        """Sign and keep a checkpoint of the current size; the log's origin is the key name."""
        size = self.size
        note = sign_checkpoint(Checkpoint(signer.name, size, self.root(size), tuple(extensions)), signer)
        self.store.save_checkpoint(size, note.to_text())
        return note

    def receipt(self, index: int, recorded_at: str, size: int | None = None) -> Receipt:
        """A receipt for leaf ``index`` against the latest kept checkpoint (or that of ``size``).

        Raises TreeSizeError when no kept checkpoint covers the leaf yet.
        """
        kept = self.store.checkpoint(size)
        if kept is None or index >= kept[0]:
            raise TreeSizeError(f"no checkpoint covers leaf {index} yet")
        note = Note.from_text(kept[1])
        checkpoint = Checkpoint.from_text(note.text)
        return Receipt.build(
            origin=checkpoint.origin,
            leaf_index=index,
            leaf_data=self.entry(index),
            inclusion_proof=self.inclusion_proof(index, checkpoint.size),
            checkpoint=checkpoint,
            checkpoint_note=note,
            recorded_at=recorded_at,
            hasher=self.hasher,
            parts=self._receipt_parts(index, checkpoint.size),
        )

    def key_history(self, size: int, note: str) -> KeyHistory | None:
        """The key rotations among the first ``size`` leaves, proved in the checkpoint ``note`` of
        that size (None: the log never changed its key before it)."""
        found = [i for i in self.find(KEY_LABEL) if i < size]
        if not found:
            return None
        return KeyHistory(note, tuple((i, self.entry(i), tuple(self.inclusion_proof(i, size))) for i in found))

    def _receipt_parts(self, index: int, size: int) -> dict[str, Any]:
        """The optional receipt parts this log holds for a leaf: the log's key history up to the
        receipt's checkpoint (docs/keys.md), the first timestamp token whose checkpoint covers it
        (docs/time.md)."""
        parts: dict[str, Any] = {}
        kept_at, latest = self.store.checkpoint(size), self.store.checkpoint()
        if latest is not None and latest[0] > size and any(size <= i < latest[0] for i in self.find(KEY_LABEL)):
            # The checkpoint's key has since been replaced: prove the current key's tree extends it.
            kept_at, size_at = latest, latest[0]
            hashes = [base64.b64encode(h).decode() for h in self.consistency_proof(size, size_at)]
            parts["key_consistency"] = {"checkpoint": latest[1], "proof": hashes}
        else:
            size_at = size
        history = None if kept_at is None else self.key_history(size_at, kept_at[1])
        if history is not None:
            parts["key_history"] = history.to_dict()
        for stamped, token in self.store.timestamps(above=index, limit=1):
            kept = self.store.checkpoint(stamped)
            if kept is not None and stamped <= self.size:
                proof = tuple(self.inclusion_proof(index, stamped))
                parts["timestamp"] = TimestampPart(kept[1], proof, token).to_dict()
        for anchored, record in self.store.anchors(above=index, limit=1):
            kept = self.store.checkpoint(anchored)
            if kept is not None and anchored <= self.size:
                doc = json.loads(record)
                proof = tuple(self.inclusion_proof(index, anchored))
                parts["anchor"] = AnchorPart(doc["chain_id"], doc["contract"], doc["tx_hash"], doc["block_number"],
                                             kept[1], proof).to_dict()  # fmt: skip
        return parts


def _bundle_writes(
    size: int, entries: Sequence[bytes], read_bundles: Callable[[Collection[int]], dict[int, bytes]]
) -> dict[int, bytes]:
    index, offset = divmod(size, TILE_WIDTH)
    current = b""
    if offset:
        current = read_bundles([index])[index]
    writes: dict[int, bytes] = {}
    pos = 0
    while pos < len(entries):
        take = min(TILE_WIDTH - offset, len(entries) - pos)
        writes[index] = current + pack_entries(entries[pos : pos + take])
        pos += take
        index += 1
        offset = 0
        current = b""
    return writes
