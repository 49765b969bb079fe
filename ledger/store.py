"""The tree store port: where a log keeps its tiles, entries and checkpoints.

Adapters: ``ledger.sqlite`` (embedded default) and ``ledger.postgres``. Both
pass ``tests/test_tree_store.py``. A store knows nothing of hashing: it answers
"give me these tiles / bundles" and commits one integration atomically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ledger.errors import TreeStoreError
from ledger.tiles import Tile, TileID


class TreeConflictError(TreeStoreError):
    """Another writer changed the tree between read and commit; retry."""

    code = "tree_conflict"


@dataclass(frozen=True, slots=True)
class TreeState:
    """The committed size of the tree and the upstream cursor stored with it."""

    size: int
    cursor: str | None


class TreeStore(ABC):
    """Persistent tiles and entry bundles of one log, written one batch at a time."""

    hash_size: int = 32

    @abstractmethod
    def state(self) -> TreeState:
        """The committed size and cursor."""

    @abstractmethod
    def read_tiles(self, ids: Collection[TileID]) -> dict[TileID, Tile]:
        """The stored tiles among ``ids`` (absent ids are left out)."""

    @abstractmethod
    def read_bundles(self, ids: Collection[int]) -> dict[int, bytes]:
        """The stored entry bundles among ``ids`` (absent ids are left out)."""

    @abstractmethod
    def commit(
        self,
        old_size: int,
        new_size: int,
        cursor: str | None,
        tiles: Mapping[TileID, Tile],
        bundles: Mapping[int, bytes],
        labels: Sequence[tuple[str, int]] = (),
        checkpoint: str | None = None,
    ) -> None:
        """Write one integration in one transaction, if the size is still ``old_size``.

        ``labels`` are (label, leaf index) pairs indexing the new leaves; ``checkpoint`` is the
        signed note of ``new_size``, kept in the same transaction.
        Raises TreeConflictError when the size moved; the store is then unchanged.
        """

    @abstractmethod
    def find(self, label: str, *, last: bool = False) -> list[int]:
        """Leaf indices under a label, ascending (only the highest when ``last``)."""

    @abstractmethod
    def save_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint note for ``size`` (replaces a cosigned-later one)."""

    @abstractmethod
    def checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint note of ``size``, or the latest one when size is None."""

    @abstractmethod
    def checkpoints(self, *, above: int = -1, newest_first: bool = False,
                    limit: int | None = None) -> list[tuple[int, str]]:  # fmt: skip
        """Kept checkpoints (size, note) of sizes over ``above``, by size (newest first if asked),
        at most ``limit`` of them."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
