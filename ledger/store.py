"""The tree store port: where a log keeps its tiles, entries and checkpoints.

Adapters: ``ledger.sqlite`` (embedded default) and ``ledger.postgres``. Both
pass ``tests/test_tree_store.py``. A store knows nothing of hashing: it answers
"give me these tiles / bundles" and commits one integration atomically, against
the state (size and cursor) its caller read.

It also keeps what makes one sequencer per log: the sequencer lock (held for a
sequencer's life, released by the kernel or the database server when its holder
dies, even by SIGKILL) and the sequencer's status (when it last checkpointed, and
the entry it cannot seal, if any), so that another process — the API's
``/healthz``, ``sifa audit`` — can tell how sealing goes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from ledger.errors import TreeStoreError
from ledger.tiles import Tile, TileID


class TreeConflictError(TreeStoreError):
    """Another writer changed the tree between read and commit; retry."""

    code = "tree_conflict"


class SequencerBusyError(TreeStoreError):
    """Another process holds the log's sequencer lock: it seals this log."""

    code = "sequencer_busy"


@dataclass(frozen=True, slots=True)
class TreeState:
    """The committed size of the tree and the upstream cursor stored with it."""

    size: int
    cursor: str | None


@dataclass(frozen=True)
class Stall:
    """An upstream entry the sequencer cannot seal; the log stops before it, loudly.

    ``position``: the upstream cursor of the entry; ``about``: what the entry is, in the
    upstream's terms (for a dossier event: dossier, version, notification id); ``since``: when
    the sequencer first met it (UTC, ISO 8601).
    """

    position: str
    reason: str
    about: Mapping[str, str | int] = field(default_factory=dict)
    since: str = ""

    def to_json(self) -> str:
        return json.dumps({"position": self.position, "reason": self.reason, "about": dict(self.about),
                           "since": self.since}, ensure_ascii=False, sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Stall:
        raw = json.loads(text)
        return cls(str(raw["position"]), str(raw["reason"]), dict(raw.get("about") or {}), str(raw.get("since", "")))


@dataclass(frozen=True)
class SequencerStatus:
    """How sealing goes, as the stores know it (cheap: read on every health check).

    ``alive``: some process holds the sequencer lock; ``checkpointed_at``: when the newest
    checkpoint was committed with its leaves (Unix time; None before the first);
    ``stall``: the entry the sequencer cannot seal, if any."""

    alive: bool
    checkpointed_at: float | None
    stall: Stall | None


class SequencerLease(ABC):
    """The sequencer lock, held until ``release`` (or until the holder dies)."""

    @abstractmethod
    def held(self) -> bool:
        """Whether the lock is still ours (False once the connection that held it is lost)."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up; a second call does nothing."""

    def __enter__(self) -> SequencerLease:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


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
        old: TreeState,
        new_size: int,
        cursor: str | None,
        tiles: Mapping[TileID, Tile],
        bundles: Mapping[int, bytes],
        labels: Sequence[tuple[str, int]] = (),
        checkpoint: str | None = None,
    ) -> None:
        """Write one integration in one transaction, if the tree is still in state ``old``.

        Compare-and-set on both size and cursor: a writer that read the tree before another
        appended commits nothing. ``labels`` are (label, leaf index) pairs indexing the new
        leaves; ``checkpoint`` is the signed note of ``new_size``, kept in the same transaction.
        Raises TreeConflictError when the state moved; the store is then unchanged.
        """

    @abstractmethod
    def find(self, label: str, *, last: bool = False) -> list[int]:
        """Leaf indices under a label, ascending (only the highest when ``last``)."""

    def labels_at(self, index: int) -> list[str]:
        """The labels leaf ``index`` was appended under (a store that keeps none: none)."""
        return []

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

    def save_timestamp(self, size: int, token: bytes) -> None:
        """Keep an RFC 3161 token (DER) for the checkpoint of ``size`` (ledger/timestamp.py); the
        same size again is a no-op. A store that keeps none says so."""
        raise TreeStoreError(f"{type(self).__name__} keeps no timestamp tokens")

    def timestamps(self, *, above: int = -1, newest_first: bool = False, limit: int | None = None
                   ) -> list[tuple[int, bytes]]:  # fmt: skip
        """Kept tokens (size, DER) for checkpoint sizes over ``above``, by size, at most ``limit``."""
        return []

    def save_anchor(self, size: int, record: str) -> None:
        """Keep where the checkpoint of ``size`` was anchored (JSON, ledger/evm.py); once per size."""
        raise TreeStoreError(f"{type(self).__name__} keeps no anchor records")

    def anchors(self, *, above: int = -1, newest_first: bool = False, limit: int | None = None
                ) -> list[tuple[int, str]]:  # fmt: skip
        """Kept anchor records (size, JSON) for checkpoint sizes over ``above``, by size, at most ``limit``."""
        return []

    @abstractmethod
    def sequencer_lock(self) -> SequencerLease:
        """Take the log's sequencer lock, without waiting: one holder per log, across processes.

        Released by ``SequencerLease.release``, and by the kernel or the database server when
        the holder dies. Raises SequencerBusyError while another holder has it.
        """

    @abstractmethod
    def sequencer_status(self) -> SequencerStatus:
        """Whether a sequencer holds the lock, when it last checkpointed, where it is stalled."""

    @abstractmethod
    def record_stall(self, stall: Stall | None) -> None:
        """Keep (or, with None, clear) the entry the sequencer cannot seal, for other processes."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
