"""The tree store contract: every adapter passes the same suite.

Backend classes at the bottom only say how to make the store.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint
from ledger.errors import LeafTooLargeError, TreeSizeError
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note, verified_by
from ledger.proof import verify_consistency, verify_inclusion
from ledger.store import (
    SequencerBusyError,
    SequencerLease,
    SequencerStatus,
    Stall,
    TreeConflictError,
    TreeState,
    TreeStore,
)
from ledger.tiles import Tile, TileID
from tests import reference
from tests.crash_writer import leaf

ROOT = Path(__file__).resolve().parent.parent
MakeStore = Callable[[], TreeStore]


class CountingStore(TreeStore):
    """Counts what a log asks of its store, to prove proofs cost O(log n) reads."""

    def __init__(self, inner: TreeStore) -> None:
        self.inner = inner
        self.tiles_read = 0
        self.bundles_read = 0

    def state(self):  # type: ignore[no-untyped-def]
        return self.inner.state()

    def read_tiles(self, ids: Collection[TileID]) -> dict[TileID, Tile]:
        self.tiles_read += len(ids)
        return self.inner.read_tiles(ids)

    def read_bundles(self, ids: Collection[int]) -> dict[int, bytes]:
        self.bundles_read += len(ids)
        return self.inner.read_bundles(ids)

    def commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.inner.commit(*args, **kwargs)

    def save_checkpoint(self, size: int, note: str) -> None:
        self.inner.save_checkpoint(size, note)

    def find(self, label: str, *, last: bool = False) -> list[int]:
        return self.inner.find(label, last=last)

    def checkpoints(self, **kw):  # type: ignore[no-untyped-def]
        return self.inner.checkpoints(**kw)

    def checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        return self.inner.checkpoint(size)

    def sequencer_lock(self) -> SequencerLease:
        return self.inner.sequencer_lock()

    def sequencer_status(self) -> SequencerStatus:
        return self.inner.sequencer_status()

    def record_stall(self, stall: Stall | None) -> None:
        self.inner.record_stall(stall)

    def close(self) -> None:
        self.inner.close()


HOLD_LOCK = """
import sys, time
from tests.crash_writer import open_store
lease = open_store(sys.argv[1]).sequencer_lock()
print("locked", flush=True)
time.sleep(600)
"""


class TreeStoreContract:
    @pytest.fixture
    def make_store(self) -> MakeStore:
        raise NotImplementedError

    @pytest.fixture
    def store_spec(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def log(self, make_store: MakeStore) -> Iterator[MerkleLog]:
        store = make_store()
        yield MerkleLog(store)
        store.close()

    def test_empty(self, log: MerkleLog) -> None:
        assert log.size == 0
        assert log.store.state().cursor is None
        assert log.root() == SHA256.empty_root()
        assert log.store.checkpoint() is None
        with pytest.raises(TreeSizeError):
            log.inclusion_proof(0, 0)

    def test_batches_roots_entries_and_cursor(self, log: MerkleLog) -> None:
        entries = ["（2026）京0105民初123号".encode(), b"", b"\x00" * 65535, *(leaf(i) for i in range(3, 1000))]
        for start, end in [(0, 1), (1, 3), (3, 255), (255, 256), (256, 257), (257, 800), (800, 1000)]:
            assert log.append(entries[start:end], cursor=f"pos-{end}", base=log.store.state()) == start
            assert log.size == end
            assert log.store.state().cursor == f"pos-{end}"
            assert log.root() == reference.mth(entries[:end])
        for size in (1, 2, 255, 256, 257, 513, 999):
            assert log.root(size) == reference.mth(entries[:size])
        assert log.entries(0, 1000) == entries
        assert log.entries(250, 260) == entries[250:260]
        assert log.entry(0).decode() == "（2026）京0105民初123号"
        assert log.leaf_hash(2) == SHA256.leaf(b"\x00" * 65535)

    def test_given_leaf_hashes_are_the_log_hashes(self, log: MerkleLog) -> None:
        """The sealer hands append the leaf hashes it chained dossiers by: the tree is the same, and a
        count that does not match the entries is refused before anything is written."""
        entries = [leaf(i) for i in range(300)]
        log.append(entries[:200], leaf_hashes=SHA256.leaves(entries[:200]))
        with pytest.raises(ValueError, match="one leaf hash per entry"):
            log.append(entries[200:], leaf_hashes=SHA256.leaves(entries[200:299]))
        assert log.size == 200
        log.append(entries[200:], leaf_hashes=SHA256.leaves(entries[200:]))
        assert log.root() == reference.mth(entries)

    def test_proofs_verify(self, log: MerkleLog) -> None:
        log.append([leaf(i) for i in range(1234)])
        for size in (1, 255, 256, 1000, 1234):
            root = log.root(size)
            for index in {0, size // 2, size - 1}:
                verify_inclusion(SHA256, index, size, SHA256.leaf(leaf(index)), log.inclusion_proof(index, size), root)
        verify_consistency(SHA256, 300, 1234, log.root(300), log.root(), log.consistency_proof(300, 1234))
        with pytest.raises(TreeSizeError):
            log.inclusion_proof(0, 1235)
        with pytest.raises(TreeSizeError):
            log.consistency_proof(10, 1235)
        with pytest.raises(TreeSizeError):
            log.root(1235)

    def test_survives_reopen(self, make_store: MakeStore) -> None:
        first = make_store()
        MerkleLog(first).append([leaf(i) for i in range(300)], cursor="300", base=first.state())
        first.close()
        again = MerkleLog(make_store())
        assert (again.size, again.store.state().cursor) == (300, "300")
        assert again.root() == reference.mth([leaf(i) for i in range(300)])
        again.append([leaf(300)])
        assert again.root() == reference.mth([leaf(i) for i in range(301)])
        again.store.close()

    def test_stale_commit_is_a_conflict_and_changes_nothing(self, log: MerkleLog) -> None:
        log.append([leaf(i) for i in range(10)])
        root = log.root()
        with pytest.raises(TreeConflictError):
            log.store.commit(TreeState(5, None), 6, "stale", {(0, 0): Tile(1, SHA256.leaf(b"x"))}, {0: b"\x00\x01x"})
        assert (log.size, log.root(), log.store.state().cursor) == (10, root, None)
        assert log.entries(0, 10) == [leaf(i) for i in range(10)]

    def test_commit_compares_size_and_cursor(self, log: MerkleLog) -> None:
        """A sealer that read the tree before another appended writes nothing: not even when the
        size it would re-read now happens to fit (the doubled-leaves race of issue 16)."""
        log.append([leaf(0), leaf(1)], cursor="7", base=log.store.state())
        seen = log.store.state()
        assert seen == TreeState(2, "7")
        root = log.root()
        for stale in (TreeState(2, "6"), TreeState(2, None), TreeState(1, "7"), TreeState(3, "7")):
            with pytest.raises(TreeConflictError):
                log.append([leaf(2)], cursor="9", base=stale)
        with pytest.raises(TreeConflictError):  # another writer moved the tree after ``seen`` was read
            log.append([leaf(2)], cursor="8", base=seen)
            log.append([leaf(3)], cursor="9", base=seen)
        assert log.store.state() == TreeState(3, "8") and log.entries(0, 3) == [leaf(0), leaf(1), leaf(2)]
        assert log.root(2) == root
        with pytest.raises(ValueError):  # an append that moves the cursor names the state it was made for
            log.append([leaf(3)], cursor="10")
        assert log.size == 3

    def test_stale_base_over_a_moved_tree_is_a_conflict(self, log: MerkleLog) -> None:
        """Planned against tiles the tree has moved past (a partial tile now full): a conflict."""
        log.append([leaf(i) for i in range(250)])
        stale = log.store.state()
        log.append([leaf(i) for i in range(250, 600)])
        with pytest.raises(TreeConflictError):
            log.append([leaf(0)], cursor="x", base=stale)
        assert log.size == 600 and log.root() == reference.mth([leaf(i) for i in range(600)])

    def test_one_sequencer_lock(self, make_store: MakeStore) -> None:
        first, second = make_store(), make_store()
        try:
            assert not first.sequencer_status().alive
            lease = first.sequencer_lock()
            assert lease.held() and first.sequencer_status().alive and second.sequencer_status().alive
            with pytest.raises(SequencerBusyError):
                second.sequencer_lock()
            with pytest.raises(SequencerBusyError):
                first.sequencer_lock()  # one holder, even within a process
            lease.release()
            lease.release()  # a second release does nothing
            assert not lease.held() and not second.sequencer_status().alive
            with second.sequencer_lock() as again:
                assert again.held() and first.sequencer_status().alive
            assert not first.sequencer_status().alive
        finally:
            first.close()
            second.close()

    def test_lock_dies_with_its_holder(self, store_spec: str, make_store: MakeStore) -> None:
        """A holder killed with SIGKILL leaves no lock behind: the kernel or the server drops it."""
        store = make_store()
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, store_spec], cwd=ROOT, stdout=subprocess.PIPE)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
            assert store.sequencer_status().alive
            with pytest.raises(SequencerBusyError):
                store.sequencer_lock()
        finally:
            holder.kill()
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()
        deadline = time.monotonic() + 10
        while store.sequencer_status().alive:  # PostgreSQL notices the closed connection at once, or nearly
            assert time.monotonic() < deadline, "the lock outlived its holder"
            time.sleep(0.05)
        store.sequencer_lock().release()
        store.close()

    def test_sequencer_status(self, log: MerkleLog) -> None:
        status = log.store.sequencer_status()
        assert status == SequencerStatus(False, None, None)
        signer = Ed25519Signer("sifa.court/1101-0105", bytes(range(32)))
        before = time.time()
        log.append([leaf(0)], cursor="1", signer=signer, base=log.store.state())
        at = log.store.sequencer_status().checkpointed_at
        assert at is not None and before - 1 <= at <= time.time() + 1
        log.append([leaf(1)], cursor="2", base=log.store.state())  # no checkpoint: the time stays
        assert log.store.sequencer_status().checkpointed_at == at
        stall = Stall("17", "its leaf would have 70123 bytes", {"dossier": "d-1", "version": 3, "notification_id": 17},
                      "2026-11-23T10:00:00Z")  # fmt: skip
        log.store.record_stall(stall)
        assert log.store.sequencer_status().stall == stall
        log.store.record_stall(None)
        assert log.store.sequencer_status().stall is None

    def test_labels_commit_with_their_leaves(self, log: MerkleLog) -> None:
        log.append([b"a", b"b"], labels=[["dossier:1", "sha256:x"], ["dossier:1"]])
        log.append([b"c"], labels=[["dossier:2", "sha256:x"]])
        assert log.find("dossier:1") == [0, 1] and log.last("dossier:1") == 1
        assert log.find("sha256:x") == [0, 2] and log.last("nothing") is None
        log.append([b"e"], labels=[["sha256:y", "sha256:y", "dossier:2"]])  # one file named twice by one event
        assert log.find("sha256:y") == [3] and log.find("dossier:2") == [2, 3]
        with pytest.raises(LeafTooLargeError):
            log.append([b"d", b"x" * 70000], labels=[["dossier:3"], ["dossier:3"]])
        assert log.find("dossier:3") == []

    def test_a_checkpoint_commits_with_its_leaves(self, log: MerkleLog) -> None:
        signer = Ed25519Signer("sifa.court/1101-0105", bytes(range(32)))
        for n in (1, 3, 300, 1000):  # batches that fill, cross and leave partial tiles
            log.append([leaf(log.size + i) for i in range(n)], cursor=str(n), signer=signer, base=log.store.state())
            size, text = log.store.checkpoint() or (0, "")
            note = Note.from_text(text)
            assert verified_by(note, [signer.verifier]) == [signer.verifier]
            checkpoint = Checkpoint.from_text(note.text)
            assert size == checkpoint.size == log.size and checkpoint.root_hash == log.root()  # as committed
        with pytest.raises(TreeConflictError):  # a batch that does not land keeps no checkpoint either
            log.store.commit(TreeState(5, "3"), 6, "stale", {(0, 0): Tile(1, SHA256.leaf(b"x"))}, {0: b"\x00\x01x"}, (),
                             "note\n")  # fmt: skip
        assert log.store.checkpoint() == (log.size, text) and log.store.checkpoint(6) is None

    def test_oversized_entry_refused_whole_batch(self, log: MerkleLog) -> None:
        log.append([b"a"])
        with pytest.raises(LeafTooLargeError):
            log.append([b"b", b"x" * 65536])
        assert log.size == 1
        assert log.entries(0, 1) == [b"a"]

    def test_proofs_cost_log_n_tile_reads(self, make_store: MakeStore) -> None:
        counting = CountingStore(make_store())
        log = MerkleLog(counting)
        n = 70_000
        log.append([leaf(i) for i in range(n)])
        levels = 3  # 70k leaves: tile levels 0, 1, 2
        rng = random.Random(7)
        for _ in range(50):
            size = rng.randint(1, n)
            index = rng.randrange(size)
            counting.tiles_read = 0
            log.inclusion_proof(index, size)
            assert counting.tiles_read <= 2 * levels
            counting.tiles_read = 0
            log.consistency_proof(rng.randint(1, size), size)
            assert counting.tiles_read <= 3 * levels
            counting.tiles_read = 0
            log.root(size)
            assert counting.tiles_read <= levels
        assert counting.bundles_read == 0  # proofs never touch the entries
        counting.close()

    def test_checkpoints(self, log: MerkleLog) -> None:
        log.store.save_checkpoint(1, "note one\n")
        log.store.save_checkpoint(5, "note five\n")
        log.store.save_checkpoint(3, "note three\n")
        assert log.store.checkpoint() == (5, "note five\n")
        assert log.store.checkpoint(3) == (3, "note three\n")
        assert log.store.checkpoint(4) is None
        log.store.save_checkpoint(5, "note five, cosigned\n")
        assert log.store.checkpoint() == (5, "note five, cosigned\n")
        assert log.store.checkpoints() == [(1, "note one\n"), (3, "note three\n"), (5, "note five, cosigned\n")]
        assert log.store.checkpoints(above=1, newest_first=True, limit=1) == [(5, "note five, cosigned\n")]
        assert log.store.checkpoints(above=3) == [(5, "note five, cosigned\n")]
        assert log.store.checkpoints(above=5) == []

    def test_timestamps_and_anchors_are_kept_once_per_size(self, log: MerkleLog) -> None:
        """RFC 3161 tokens (docs/time.md) and chain anchor records (docs/anchoring.md), by checkpoint size."""
        store = log.store
        assert store.timestamps() == [] and store.anchors() == []
        store.save_timestamp(3, b"\x30token three")
        store.save_timestamp(7, b"\x30token seven\x00")
        store.save_timestamp(3, b"another token")  # the same size again: a no-op, never a replacement
        assert store.timestamps() == [(3, b"\x30token three"), (7, b"\x30token seven\x00")]
        assert store.timestamps(above=3) == [(7, b"\x30token seven\x00")]
        assert store.timestamps(newest_first=True, limit=1) == [(7, b"\x30token seven\x00")]
        store.save_anchor(4, '{"tx_hash": "0x01"}')
        store.save_anchor(4, '{"tx_hash": "0x02"}')
        store.save_anchor(9, '{"tx_hash": "0x03"}')
        assert store.anchors(above=2, limit=1) == [(4, '{"tx_hash": "0x01"}')]
        assert store.anchors(newest_first=True) == [(9, '{"tx_hash": "0x03"}'), (4, '{"tx_hash": "0x01"}')]

    @pytest.mark.slow
    def test_sigkill_leaves_old_or_new_size(self, store_spec: str, make_store: MakeStore) -> None:
        """A writer killed at random moments never leaves a half-appended batch."""
        batch = 2000
        rng = random.Random(os.getpid())
        for _ in range(4):
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.crash_writer", store_spec, str(batch)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.2, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        store = make_store()
        log = MerkleLog(store)
        size = log.size
        assert size > 0 and size % batch == 0
        assert store.state().cursor == str(size)
        leaves = [leaf(i) for i in range(size)]
        assert log.root() == reference.mth(leaves)
        assert log.entries(size - batch, size) == leaves[-batch:]
        store.close()


class TestSQLiteTreeStore(TreeStoreContract):
    @pytest.fixture
    def store_spec(self, tmp_path: Path) -> str:
        return f"sqlite:{tmp_path / 'tree.db'}"

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        from ledger.sqlite import SQLiteTreeStore

        return lambda: SQLiteTreeStore(tmp_path / "tree.db")


class TestPostgresTreeStore(TreeStoreContract):
    @pytest.fixture
    def store_spec(self, pg_dsn: str) -> str:
        return f"postgres:{pg_dsn}"

    @pytest.fixture
    def make_store(self, pg_dsn: str) -> MakeStore:
        from ledger.postgres import PostgresTreeStore

        return lambda: PostgresTreeStore(pg_dsn)
