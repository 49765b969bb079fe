"""Sealing: every stored event becomes one ledger leaf, exactly once, in order.

The sealer follows the event store's notification log from the cursor the tree
store committed with its last batch, turns each event into its envelope leaf
and appends the batch with the new cursor, its labels and the signed checkpoint
of the new size in one transaction. A crash or restart resumes at the committed cursor:
no event is skipped or sealed twice. Two sealers racing lose nothing: the tree
store's size check makes one of them retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dossier.domain import Dossier
from dossier.envelope import envelope, envelope_bytes, file_hashes, read_leaf
from ledger.cosignature import CosignatureVerifier, cosigners
from ledger.errors import TreeSizeError
from ledger.log import MerkleLog
from ledger.note import Note, Signer
from ledger.receipt import Receipt
from ledger.store import TreeConflictError

if TYPE_CHECKING:
    from dossier.application import DossierApp

log = logging.getLogger(__name__)
HEADS = 50_000  # dossiers whose last leaf hash the sequencer keeps in memory
WITNESS_SCAN = 1000  # checkpoints, newest first, searched for one with the witness quorum


class Sealer:
    """Seals a dossier application's events into a court's log."""

    def __init__(self, app: DossierApp, log: MerkleLog, signer: Signer, *, batch: int = 1000,
                 witnesses: Sequence[CosignatureVerifier] = (), quorum: int = 0) -> None:  # fmt: skip
        """``witnesses``/``quorum``: receipts then use the newest checkpoint that many have cosigned."""
        self.app, self.log, self.signer, self.batch = app, log, signer, batch
        self.witnesses, self.quorum = list(witnesses), quorum
        self.origin = signer.name
        self._lock = threading.Lock()
        # Each dossier's last leaf hash (its next leaf's ``prev``), as of tree size _heads_size: valid
        # while no one else appends (checked by size), so a busy log skips two queries per dossier.
        self._heads: OrderedDict[str, bytes] = OrderedDict()
        self._heads_size = -1

    def seal(self, limit: int | None = None) -> int:
        """Seal what is waiting (at most ``limit`` events); return how many were sealed.

        Full batches follow one another (a backlog); a batch that took all there was ends the
        pass. Going on would seal what arrived during that batch — under steady load a handful
        of events per transaction and per checkpoint, each costing what a full one costs.
        """
        total = 0
        with self._lock:
            while limit is None or total < limit:
                size = self.batch if limit is None else min(self.batch, limit - total)
                try:
                    n = self._seal_batch(size)
                except TreeConflictError:
                    continue  # another sealer appended first: read its cursor and go on
                total += n
                if n < size:
                    break
        return total

    def _seal_batch(self, limit: int) -> int:
        state = self.log.store.state()
        after = int(state.cursor or 0)
        notes = self.app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        if not notes:
            return 0
        entries: list[bytes] = []
        labels: list[list[str]] = []
        if state.size != self._heads_size:  # someone else appended (or nothing is known yet)
            self._heads.clear()
        heads: dict[str, bytes] = {}  # this batch's, kept only once it is committed
        for i, note in enumerate(notes):
            event = self.app.mapper.to_domain_event(note)
            assert isinstance(event, Dossier.Event), f"not a dossier event: {note.topic}"
            dossier = str(note.originator_id)
            prev = heads.get(dossier) or self._heads.get(dossier) or self._head(dossier)
            doc = envelope(self.origin, state.size + i, note.id, event, prev)
            data = envelope_bytes(doc)
            heads[dossier] = self.log.hasher.leaf(data)
            entries.append(data)
            labels.append([f"dossier:{dossier}", f"event:{dossier}:{note.originator_version}",
                           *(f"sha256:{h}" for h in file_hashes(doc["body"]))])  # fmt: skip
        self.log.append(entries, cursor=str(notes[-1].id), labels=labels, signer=self.signer)  # checkpoint included
        self._remember(heads, state.size + len(notes))
        return len(notes)

    def _remember(self, heads: dict[str, bytes], size: int) -> None:
        for dossier, leaf in heads.items():
            self._heads[dossier] = leaf
            self._heads.move_to_end(dossier)
        while len(self._heads) > HEADS:
            self._heads.popitem(last=False)
        self._heads_size = size

    def _head(self, dossier: str) -> bytes | None:
        index = self.log.last(f"dossier:{dossier}")
        return None if index is None else self.log.leaf_hash(index)

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Seal continuously until ``stop`` is set (the node's sequencer).

        A backend outage must not end sealing: the error is logged, the sequencer
        waits (backing off up to 5 s) and resumes from the committed cursor.
        """
        backoff = interval
        while not stop.is_set():
            try:
                self.seal()  # everything waiting, in batches
            except Exception:
                log.exception("sealing failed; retrying in %.2f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = interval
            # Wait even after sealing: under load, what arrives meanwhile is sealed as one batch
            # (one transaction, one signed checkpoint) instead of many tiny ones.
            stop.wait(interval)

    # Receipts: what a clerk hands a lawyer.
    def receipt_for_event(self, dossier: str, version: int) -> Receipt:
        """The receipt of one event; raises TreeSizeError while it is not yet sealed."""
        found = self.log.find(f"event:{dossier}:{version}")
        if not found:
            raise TreeSizeError(f"event {version} of dossier {dossier} is not sealed yet")
        return self._receipt(found[0])

    def receipts_for_file(self, sha256: str) -> list[Receipt]:
        """Receipts of every sealed event that names a file by its SHA-256."""
        return [self._receipt(i) for i in self.log.find(f"sha256:{sha256}")]

    def _receipt(self, index: int) -> Receipt:
        recorded_at = read_leaf(self.log.entry(index))["time"]
        return self.log.receipt(index, recorded_at=recorded_at, size=self.witnessed_size(index))

    def witnessed_size(self, index: int) -> int | None:
        """The newest checkpoint covering leaf ``index`` with the witness quorum (None: the newest).

        Looks at the newest WITNESS_SCAN checkpoints only: witnesses cosign the latest checkpoint
        every round, so a cosigned one is among the last few seconds' (one per sealed batch)."""
        if not self.quorum:
            return None
        for size, text in self.log.store.checkpoints(above=index, newest_first=True, limit=WITNESS_SCAN):
            if len(cosigners(Note.from_text(text), self.witnesses)) >= self.quorum:
                return size
        return None  # not cosigned yet: the receipt says so when verified with the quorum

    def wait_sealed(self, timeout: float = 10.0) -> None:
        """Block until the event store's newest event is sealed (tests, CLI)."""
        deadline = time.monotonic() + timeout
        target = self.app.recorder.max_notification_id() or 0
        while int(self.log.store.state().cursor or 0) < target:
            if time.monotonic() > deadline:
                raise TimeoutError("events were not sealed in time")
            self.seal()
