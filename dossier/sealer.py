"""Sealing: every stored event becomes one ledger leaf, exactly once, in order.

The sealer follows the event store's notification log from the cursor the tree
store committed with its last batch, turns each event into its ``sifa-leaf/2`` leaf
(nothing of the case in clear: dossier/envelope.py) and appends the batch with the new
cursor, its labels and the signed checkpoint
of the new size in one transaction. A crash or restart resumes at the committed cursor:
no event is skipped or sealed twice.

One sequencer per log, by construction: ``run`` holds the tree store's sequencer lock
for its life (a second one waits for it), and every batch commits against the tree
state (size and cursor) it was made from, so even a sealer without the lock (``seal``
called directly) can only lose a race, never double a leaf.

An event that cannot be sealed (its leaf over 65,535 bytes, or unreadable) stops the log
before it, loudly: what came before is sealed, the event is logged once as an error and
recorded as the sequencer's stall in the tree store (``/healthz`` answers degraded,
``sifa audit`` names it), and the sequencer checks again now and then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from dossier.domain import Dossier
from dossier.envelope import body_of, disclosures_of, named_file_hashes, stored_body
from dossier.fields import utc
from evidence.disclosure import read_leaf
from evidence.leaf import FORMAT as LEAF_FORMAT
from evidence.leaf import build_leaf
from ledger.cosignature import CosignatureVerifier, cosigners
from ledger.errors import TreeSizeError
from ledger.log import MerkleLog
from ledger.note import Note, Signer
from ledger.receipt import Receipt
from ledger.store import SequencerBusyError, SequencerLease, Stall, TreeConflictError, TreeStore
from ledger.tiles import MAX_ENTRY_SIZE

if TYPE_CHECKING:
    from dossier.application import DossierApp

log = logging.getLogger(__name__)
HEADS = 50_000  # dossiers whose last leaf hash the sequencer keeps in memory
WITNESS_SCAN = 1000  # checkpoints, newest first, searched for one with the witness quorum
LOCK_RETRY = 0.5  # seconds between tries for a sequencer lock another process holds
LEASE_CHECK = 2.0  # seconds between checks that the lock is still ours (a lost database connection)
STALLED_RETRY = 5.0  # seconds between looks at an event that could not be sealed


class Stop(Protocol):
    """What a long-running loop waits on: ``threading.Event``, or a signal-safe stop (api/lifecycle)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def hold_lock(store: TreeStore, stop: Stop, retry: float = LOCK_RETRY) -> SequencerLease | None:
    """The log's sequencer lock, waited for while another sequencer holds it; None once ``stop`` is set.

    A store that does not answer is tried again (backing off up to 5 s), as sealing is."""
    said, backoff = False, retry
    while not stop.is_set():
        try:
            return store.sequencer_lock()
        except SequencerBusyError as exc:
            if not said:
                log.warning("%s; waiting for its lock", exc.diagnostics())
                said = True
            stop.wait(retry)
        except Exception:
            log.exception("cannot take the sequencer lock; trying again in %.2f s", backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
    return None


class Sealer:
    """Seals a dossier application's events into a court's log."""

    def __init__(self, app: DossierApp, log: MerkleLog, signer: Signer, *, secret: bytes, batch: int = 1000,
                 witnesses: Sequence[CosignatureVerifier] = (), quorum: int = 0) -> None:  # fmt: skip
        """``secret``: the node secret salts and dossier references are keyed by (at least 32 bytes,
        fixed for the log). ``witnesses``/``quorum``: receipts then use the newest checkpoint that many
        have cosigned."""
        self.app, self.log, self.signer, self.batch = app, log, signer, batch
        self.secret = secret
        self.witnesses, self.quorum = list(witnesses), quorum
        self.origin = signer.name
        self._lock = threading.Lock()
        # Each dossier's last leaf hash (its next leaf's ``prev``), as of tree size _heads_size: valid
        # while no one else appends (checked by size), so a busy log skips two queries per dossier.
        self._heads: OrderedDict[str, bytes] = OrderedDict()
        self._heads_size = -1
        # The event the log stops before, as recorded in the tree store (read once, then kept up).
        self.stall: Stall | None = None
        self._stall_read = False
        self._said: str | None = None  # the stall's position once logged as an error by this process

    def seal(self, limit: int | None = None) -> int:
        """Seal what is waiting (at most ``limit`` events); return how many were sealed.

        Full batches follow one another (a backlog); a batch that took all there was ends the
        pass. Going on would seal what arrived during that batch — under steady load a handful
        of events per transaction and per checkpoint, each costing what a full one costs.
        A pass also ends at an event that cannot be sealed (``stall`` then names it).
        """
        total = 0
        with self._lock:
            if not self._stall_read:
                self.stall, self._stall_read = self.log.store.sequencer_status().stall, True
            while limit is None or total < limit:
                size = self.batch if limit is None else min(self.batch, limit - total)
                try:
                    n, stalled = self._seal_batch(size)
                except TreeConflictError:
                    continue  # another sealer appended first: read its cursor and go on
                total += n
                if n < size or stalled:
                    break
        return total

    def _seal_batch(self, limit: int) -> tuple[int, bool]:
        state = self.log.store.state()
        after = int(state.cursor or 0)
        notes = self.app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        entries: list[bytes] = []
        hashes: list[bytes] = []
        labels: list[list[str]] = []
        if state.size != self._heads_size:  # someone else appended (or nothing is known yet)
            self._heads.clear()
        heads: dict[str, bytes] = {}  # this batch's, kept only once it is committed
        stall: Stall | None = None
        for i, note in enumerate(notes):
            try:
                kind, when, body = self._read(note)
            except Exception as exc:  # a stored event that does not decrypt or decode: never skipped
                stall = _stall(note, f"the stored event cannot be read ({type(exc).__name__}: {exc})"[:500])
                break
            dossier = str(note.originator_id)
            prev = heads.get(dossier) or self._heads.get(dossier) or self._head(dossier)
            try:
                data = build_leaf(origin=self.origin, seq=state.size + i, position=note.id, dossier=note.originator_id,
                                  version=note.originator_version, type=kind, time=utc(when), prev=prev, body=body,
                                  secret=self.secret)  # fmt: skip
            except (
                ValueError,
                OverflowError,
            ) as exc:  # check_fits refuses such a command; one from before it may remain
                stall = _stall(note, f"the stored event cannot be written as a leaf: {exc}"[:500])
                break
            if len(data) > MAX_ENTRY_SIZE:
                stall = _stall(note, f"its leaf would have {len(data)} bytes; a leaf holds at most {MAX_ENTRY_SIZE}")
                break
            heads[dossier] = leaf_hash = self.log.hasher.leaf(data)
            hashes.append(leaf_hash)
            entries.append(data)
            labels.append([f"dossier:{dossier}", f"event:{dossier}:{note.originator_version}",
                           *(f"sha256:{h}" for h in named_file_hashes(body))])  # fmt: skip
        if entries:  # what comes before an event that cannot be sealed is sealed all the same
            last = notes[len(entries) - 1].id
            self.log.append(entries, cursor=str(last), labels=labels, signer=self.signer, base=state,
                            leaf_hashes=hashes)  # fmt: skip
            self._remember(heads, state.size + len(entries))
        if stall is not None:
            self._stalled(stall)
        elif self.stall is not None and (entries or not notes):
            self._unstalled()
        return len(entries), stall is not None

    def _read(self, note: Notification) -> tuple[str, datetime, dict[str, Any]]:
        """A stored event's type name, time and ``stored_body``: what its leaf is built from.

        What ``mapper.to_domain_event`` then ``stored_body`` give, without building the event object
        (the sealer's hot path: a sixth of its time went to objects read once). An event class with
        upcasting goes the long way. Raises whatever decrypting or decoding raises."""
        cls = resolve_topic(note.topic)
        if not (isinstance(cls, type) and issubclass(cls, Dossier.Event)):
            raise TypeError(f"not a dossier event: {note.topic}")
        mapper = self.app.mapper
        if getattr(cls, "class_version", 1) != 1:
            return self._read_event(note)
        data = note.state
        if mapper.cipher:
            data = mapper.cipher.decrypt(data)
        if mapper.compressor:
            data = mapper.compressor.decompress(data)
        fields: dict[str, Any] = mapper.transcoder.decode(data)
        if "class_version" in fields:  # stored by a class that upcasts: the long way
            return self._read_event(note)
        when = fields["timestamp"]
        if not isinstance(when, datetime):
            raise TypeError("the stored event's timestamp is not a time")
        return cls.__name__, when, body_of(fields)

    def _read_event(self, note: Notification) -> tuple[str, datetime, dict[str, Any]]:
        event = self.app.mapper.to_domain_event(note)
        if not isinstance(event, Dossier.Event):
            raise TypeError(f"not a dossier event: {note.topic}")
        return type(event).__name__, event.timestamp, stored_body(event)

    def _stalled(self, stall: Stall) -> None:
        """Say it loudly, once per process and event; keep it in the tree store for the others."""
        if self.stall is None or self.stall.position != stall.position:
            self.log.store.record_stall(stall)
            self.stall = stall
        if self._said != stall.position:
            about = ", ".join(f"{k} {v}" for k, v in stall.about.items())
            log.error("SEALING STOPPED: %s cannot be sealed: %s. Nothing after it is sealed until this is dealt "
                      "with (docs/operations.md).", about, stall.reason)  # fmt: skip
            self._said = stall.position

    def _unstalled(self) -> None:
        assert self.stall is not None
        log.warning("sealing goes on past position %s", self.stall.position)
        self.log.store.record_stall(None)
        self.stall, self._said = None, None

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

    def run(self, stop: Stop, interval: float = 0.05, lease: SequencerLease | None = None) -> None:
        """Seal continuously until ``stop`` is set (the node's sequencer), holding the sequencer lock.

        ``lease``: the lock, already taken by the caller (else taken here, waited for while another
        sequencer holds it). A backend outage must not end sealing: the error is logged, the
        sequencer waits (backing off up to 5 s) and resumes from the committed cursor; a lock lost
        with its database connection is taken again. Once ``stop`` is set, what is waiting is
        sealed in one last batch (a clean stop leaves nothing behind), and the lock is released.
        """
        while not stop.is_set():
            if lease is None:
                lease = hold_lock(self.log.store, stop)
                if lease is None:
                    return
            with lease:
                log.info("sequencer lock taken: this process seals the log")
                self._sequence(stop, interval, lease)
                if stop.is_set() and lease.held():
                    try:
                        self.seal(limit=self.batch)
                    except Exception:
                        log.exception("the last sealing pass failed; the next sequencer seals on")
            lease = None

    def _sequence(self, stop: Stop, interval: float, lease: SequencerLease) -> None:
        backoff = interval
        checked = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - checked > LEASE_CHECK:
                if not lease.held():
                    log.warning("the sequencer lock was lost with its database connection; taking it again")
                    return
                checked = time.monotonic()
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
            stop.wait(STALLED_RETRY if self.stall is not None else interval)

    # Receipts: what a clerk hands a lawyer.
    def receipt_for_event(self, dossier: str, version: int, *, role: str = "staff", principal: str | None = None,
                          secondary: bool = False) -> Receipt:  # fmt: skip
        """The receipt of one event, with the disclosures ``role`` may be shown (``disclosures_of``);
        raises TreeSizeError while it is not yet sealed."""
        found = self.log.find(f"event:{dossier}:{version}")
        if not found:
            raise TreeSizeError(f"event {version} of dossier {dossier} is not sealed yet")
        return self._receipt(found[0], role=role, principal=principal, secondary=secondary)

    def receipts_for_file(self, sha256: str, *, role: str = "staff", principal: str | None = None) -> list[Receipt]:
        """Receipts of every sealed event that names a file by its SHA-256."""
        return [self._receipt(i, role=role, principal=principal) for i in self.log.find(f"sha256:{sha256}")]

    def _receipt(self, index: int, *, role: str, principal: str | None, secondary: bool = False) -> Receipt:
        data = self.log.entry(index)
        leaf = read_leaf(data)
        assert leaf.time is not None, f"leaf {index} states no time"
        receipt = self.log.receipt(index, recorded_at=leaf.time, size=self.witnessed_size(index))
        if leaf.format != LEAF_FORMAT or leaf.position is None:
            return receipt  # a sifa-leaf/1 leaf: its body is in clear, nothing to disclose (sifa-receipt/1)
        # A sifa-leaf/2 leaf names its dossier only by reference: its event is found by its position.
        [note] = self.app.recorder.select_notifications(start=leaf.position, limit=1)
        event = self.app.mapper.to_domain_event(note)
        assert isinstance(event, Dossier.Event) and note.id == leaf.position
        shown = disclosures_of(event, self.secret, role=role, principal=principal, secondary=secondary)
        return receipt.with_disclosures([d.to_json() for d in shown])

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


def _stall(note: Notification, reason: str) -> Stall:
    """The stall at one stored event (an eventsourcing notification)."""
    about: dict[str, str | int] = {"dossier": str(note.originator_id), "version": int(note.originator_version),
                                   "notification_id": int(note.id)}  # fmt: skip
    return Stall(str(note.id), reason, about, datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
