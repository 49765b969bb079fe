"""``sifa audit``: re-verify everything a node holds, and name every finding.

Checks, in order: (1) every stored event decrypts and its leaf is exactly the
leaf it should be (``sifa-leaf/2``, rebuilt with the node secret; ``sifa-leaf/1`` where the stored
leaf is one, from before), in the same order, with the same per-dossier chain, and
no leaf lacks an event, and every event not yet sealed can be (it decodes, its
leaf fits) — one that cannot stops the log before it, and the sequencer's stall
recorded in the tree store is named too; (2) every file a dossier names is in the
blob store and still hashes to its name; (3) the tree recomputed from the leaves
has the roots the stored tiles give; (4) every kept checkpoint is signed by the
log's key and names the recomputed root of its size.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from eventsourcing.persistence import Notification, PersistenceError

from dossier.application import DossierApp
from dossier.domain import Dossier
from dossier.envelope import envelope, envelope_bytes, is_v2, leaf_v2, read_leaf, stored_body
from evidence.salts import dossier_ref
from ledger.checkpoint import open_checkpoint
from ledger.compact import CompactRange
from ledger.errors import LedgerError
from ledger.keys import LABEL as KEY_LABEL
from ledger.keys import follow, read_rotation
from ledger.log import MerkleLog
from ledger.note import Verifier
from ledger.store import TreeStore
from ledger.tiles import MAX_ENTRY_SIZE, TILE_WIDTH, unpack_entries
from storage.blobstore import BlobStore
from storage.errors import StorageError

PAGE = 1000
BUNDLES = 64  # entry bundles per read of the tree pass: 16,384 leaves
STORED_FILES = ("DocumentUploaded", "DocumentReceived", "Received", "Archived")  # events whose files the node keeps
KEPT = ("sha256", "package_sha256", "events_sha256", "checkpoint_sha256")


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    detail: str


@dataclass
class AuditReport:
    events: int = 0
    leaves: int = 0
    unsealed: int = 0
    blobs: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "events": self.events, "leaves": self.leaves, "unsealed": self.unsealed,
                "blobs": self.blobs, "checkpoints": self.checkpoints,
                "findings": [f.__dict__ for f in self.findings]}  # fmt: skip


Progress = Callable[[str, int, int], None]


def audit(app: DossierApp, log: MerkleLog, blobs: BlobStore, log_key: Verifier, *, secret: bytes,
          dossier: str | None = None, progress: Progress | None = None) -> AuditReport:  # fmt: skip
    """Audit a node; ``secret`` is the node secret its leaves are keyed by; ``dossier`` limits the
    findings and file checks to one dossier."""
    report = AuditReport()
    say = progress or (lambda stage, done, total: None)
    size = log.size
    report.leaves = size
    origin = log_key.name
    heads: dict[str, bytes] = {}  # by the dossier's leaf reference: an unreadable row is named only by that
    files: dict[str, set[str]] = {}  # sha256 -> the dossiers (and file names) that hold it
    index = 0
    after: int | None = None
    try:  # an unreadable row is named by its sealed leaf, which holds the dossier's reference, not its id
        ref = dossier_ref(secret, dossier) if dossier is not None else None
    except (ValueError, TypeError):
        ref = None
    rotations = set(log.find(KEY_LABEL))
    while True:
        notes = _page(app, after)
        if not notes:
            break
        after = notes[-1].id
        stored = _entries(log, index, min(size, index + len(notes) + len(rotations)), report)
        for note in notes:
            while index in rotations:  # the log's own key rotations (docs/keys.md) are not events
                index += 1
            if isinstance(note, _Unread):  # which dossier's event it was, as its sealed leaf says
                note = note.named(stored.get(index))
            report.events += 1
            ours = dossier is None or str(note.originator_id) in (dossier, ref)
            where = _where(note.originator_id, note.originator_version, note.id)
            sealed = index < size
            if not sealed:
                report.unsealed += 1
            try:
                if isinstance(note, _Unread):
                    raise note.error
                event = app.mapper.to_domain_event(note)
                assert isinstance(event, Dossier.Event)
                prev = heads.get(_head_key(secret, note.originator_id))
                body = stored_body(event)
                old = stored.get(index)
                if old is not None and index < size and not is_v2(old):  # sealed before sifa-leaf/2
                    expected = envelope_bytes(envelope(origin, index, note.id, event, prev))
                else:
                    expected = leaf_v2(origin, index, note.id, event, prev, secret, body)
            except Exception as exc:  # a tampered row does not decrypt or decode
                # Continue the dossier's chain from the stored leaf, so later events are judged on their own.
                heads[_head_key(secret, note.originator_id)] = log.hasher.leaf(stored.get(index, b""))
                if ours:
                    report.findings.append(Finding("event_unreadable", where, f"{type(exc).__name__}: {exc}"[:300]))
                index += 1
                continue
            heads[_head_key(secret, note.originator_id)] = log.hasher.leaf(expected)
            if not sealed:
                if len(expected) > MAX_ENTRY_SIZE and ours:
                    report.findings.append(Finding("event_unsealable", where, f"its leaf would have {len(expected)} "
                                                   f"bytes, a leaf holds at most {MAX_ENTRY_SIZE}: the log cannot "
                                                   "seal it or anything after it"))  # fmt: skip
                index += 1
                continue
            if type(event).__name__ in STORED_FILES and ours:
                name = getattr(event, "name", None)
                holder = f"dossier {note.originator_id}" + (f" as {name}" if isinstance(name, str) else "")
                for sha in (v for k, v in body.items() if k in KEPT and isinstance(v, str)):
                    files.setdefault(sha, set()).add(holder)
            got = stored.get(index)
            if got is not None and got != expected and ours:
                report.findings.append(Finding("leaf_mismatch", f"leaf {index}", f"does not record {where}"))
            index += 1
        say("events", report.events, report.events)
    while index in rotations:
        index += 1
    if index < size:
        report.findings.append(Finding("leaf_without_event", f"leaves {index}..{size - 1}", "no stored event"))
    stall = log.store.sequencer_status().stall
    if stall is not None and (dossier is None or stall.about.get("dossier") == dossier):
        where = _where(stall.about.get("dossier"), stall.about.get("version"), stall.position)
        if not any(f.where == where for f in report.findings):
            report.findings.append(Finding("sequencer_stalled", where, f"the sequencer stopped here since "
                                           f"{stall.since}: {stall.reason}"))  # fmt: skip

    for n, sha in enumerate(sorted(files), start=1):
        try:
            blobs.verify(sha)
        except StorageError as exc:
            kind = exc.code if exc.code.startswith("blob_") else "blob_" + exc.code
            held = "; held by " + ", ".join(sorted(files[sha]))
            report.findings.append(Finding(kind, f"blob {sha}", exc.diagnostics() + held))
        report.blobs = n
        say("files", n, len(files))

    audit_log(log, log_key, report, size=size, progress=say)
    return report


def audit_log(log: MerkleLog, log_key: Verifier, report: AuditReport, *, size: int | None = None,
              progress: Progress | None = None) -> None:  # fmt: skip
    """Checks (3) and (4) on the log's first ``size`` leaves (default: all), adding to ``report``.

    One streaming pass: kept checkpoints a page at a time, each read once, and the leaves replayed
    through a compact range up to each checkpoint's size — O(log n) memory (docs/ledger.md).
    """
    say = progress or (lambda stage, done, total: None)
    size = log.size if size is None else size
    replay = _Replay(log, size, report, say)
    keys = _log_keys(log, log_key, report)
    kept_findings: list[Finding] = []  # the checkpoints' findings, reported after the tree's findings, as before
    last = -1
    while page := log.store.checkpoints(above=last, limit=PAGE):
        last = page[-1][0]
        for s, text in page:
            report.checkpoints += 1
            root = replay.root(s) if 0 < s <= size else None
            try:
                checkpoint, _ = open_checkpoint(text, keys)
            except LedgerError as exc:
                kept_findings.append(Finding("checkpoint_signature", f"checkpoint {s}", exc.diagnostics()))
                continue
            if checkpoint.size != s or (root is not None and root != checkpoint.root_hash):
                kept_findings.append(Finding("checkpoint_root", f"checkpoint {s}",
                                             "its root is not the root of the recorded leaves"))  # fmt: skip
    replay.root(size)
    report.findings.extend(kept_findings)


@dataclass(frozen=True)
class _Unread:
    """A stored event row the database driver cannot even return (SQLite: TEXT that is not UTF-8 in
    the state column): its position is known, its dossier and version are not."""

    id: int
    error: Exception
    originator_id: str = "?"
    originator_version: str = "?"

    def named(self, leaf: bytes | None) -> _Unread:
        """The row named by the leaf it was sealed as (its dossier and version), if it was sealed."""
        try:
            doc = read_leaf(leaf or b"")
            return replace(self, originator_id=str(doc["dossier"]), originator_version=str(doc["version"]))
        except (ValueError, KeyError, TypeError):
            return self


_ROW_ERRORS = (PersistenceError, sqlite3.Error, UnicodeDecodeError)


def _page(app: DossierApp, after: int | None) -> list[Notification | _Unread]:
    """The next page of stored events after position ``after``. A page holding a row that cannot be
    read is read again one position at a time, the unreadable rows as ``_Unread``; a store that does not
    answer at all raises (that is an outage, not a finding)."""
    recorder = app.recorder
    try:
        return list(recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=after is None))
    except _ROW_ERRORS:
        last = recorder.max_notification_id() or 0  # raises when the store is down
    out: list[Notification | _Unread] = []
    for position in range((after or 0) + 1, last + 1):
        try:
            out.extend(recorder.select_notifications(start=position, limit=1, stop=position))
        except _ROW_ERRORS as exc:
            out.append(_Unread(position, exc))
        if len(out) == PAGE:
            break
    return out


def _head_key(secret: bytes, dossier: object) -> str:
    """A dossier's key in the chain heads: its leaf reference (``dossier_ref``), whether the event was
    read (its id) or is an unreadable row named by its sealed sifa-leaf/2 leaf (the reference itself)."""
    text = str(dossier)
    if len(text) == 36:  # a dossier id (uuid with dashes); a reference is 32 hex digits
        try:
            return dossier_ref(secret, text)
        except (ValueError, TypeError):
            pass
    return text


def _log_keys(log: MerkleLog, log_key: Verifier, report: AuditReport) -> list[Verifier]:
    """The log's keys with their windows, followed through its own rotation leaves from the first
    key (docs/keys.md); the last must be the node's key. Without rotations: the node's key."""
    try:
        rotations = [read_rotation(log.entry(i), i) for i in log.find(KEY_LABEL)]
        if not rotations:
            return [log_key]
        keys: list[Verifier] = list(follow([rotations[0].old], rotations))
    except LedgerError as exc:
        report.findings.append(Finding("key_history", "log keys", exc.diagnostics()))
        return [log_key]
    if keys[-1].key_id != log_key.key_id:
        report.findings.append(
            Finding("key_history", "log keys", "the node's key is not the last one its log hands on to")
        )
    return keys


def _where(dossier: object, version: object, position: object) -> str:
    return f"event {dossier} v{version} (position {position})"


def _entries(log: MerkleLog, start: int, end: int, report: AuditReport) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for i, entry in enumerate(_read_entries(log.store, start, end), start=start):
        if entry is None:
            report.findings.append(Finding("leaf_missing", f"leaf {i}", "the leaf's data is gone from the store"))
        out[i] = entry or b""
    return out


def _read_entries(store: TreeStore, start: int, end: int) -> list[bytes | None]:
    """The entries [start, end) read as whole bundles; None for each one its bundle no longer holds."""
    if end <= start:
        return []
    first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
    try:
        bundles = store.read_bundles(range(first, last + 1))
    except LedgerError:
        bundles = {}
    out: list[bytes | None] = []
    for b in range(first, last + 1):
        base = b * TILE_WIDTH
        lo, hi = max(start, base) - base, min(end, base + TILE_WIDTH) - base
        try:
            held = unpack_entries(bundles[b])[lo:hi]
        except (KeyError, ValueError):  # gone, or cut short
            held = []
        out.extend(held)
        out.extend([None] * (hi - lo - len(held)))
    return out


class _Replay:
    """The stored leaves streamed once, in order, through a compact range.

    ``root(n)`` (n ascending) reads on to leaf n, a page of entry bundles at a time, and returns
    the root recomputed from the leaves; where the stored tiles give another root for n, it adds a
    ``tree_mismatch`` finding. Memory: one page of leaf hashes and O(log n) subtree hashes.
    """

    def __init__(self, log: MerkleLog, size: int, report: AuditReport, say: Progress) -> None:
        self.log, self.size, self.report, self.say = log, size, report, say
        self.range = CompactRange(log.hasher)
        self.page: list[bytes] = []  # leaf hashes read ahead; page[at] is that of leaf range.end
        self.at = 0
        self.checked = 0

    def root(self, target: int) -> bytes:
        """Precondition: 0 <= target <= size, and no smaller than the previous target."""
        while self.range.end < target:
            if self.at == len(self.page):
                start = self.range.end
                end = min(self.size, (start // TILE_WIDTH + BUNDLES) * TILE_WIDTH)
                entries = _read_entries(self.log.store, start, end)
                self.page = self.log.hasher.leaves([e or b"" for e in entries])
                self.at = 0
                self.say("leaves", end, self.size)
            take = min(len(self.page) - self.at, target - self.range.end)
            self.range.extend(self.page[self.at : self.at + take])
            self.at += take
        recomputed = self.range.root()
        if target and target != self.checked:
            self.checked = target
            try:
                stored = self.log.root(target)
            except (KeyError, LedgerError):
                stored = b""
            if stored != recomputed:
                self.report.findings.append(Finding("tree_mismatch", f"tree size {target}",
                                                    "the stored tiles disagree with the recorded leaves"))  # fmt: skip
        return recomputed
