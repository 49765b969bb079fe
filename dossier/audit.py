"""``sifa audit``: re-verify everything a node holds, and name every finding.

Checks, in order: (1) every stored event decrypts and its leaf is exactly the
envelope it should be, in the same order, with the same per-dossier chain, and
no leaf lacks an event, and every event not yet sealed can be (it decodes, its
leaf fits) — one that cannot stops the log before it, and the sequencer's stall
recorded in the tree store is named too; (2) every file a dossier names is in the
blob store and still hashes to its name; (3) the tree recomputed from the leaves
has the roots the stored tiles give; (4) every kept checkpoint is signed by the
log's key and names the recomputed root of its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dossier.application import DossierApp
from dossier.domain import Dossier
from dossier.envelope import envelope, envelope_bytes
from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError
from ledger.log import MerkleLog
from ledger.note import Verifier
from ledger.sqlite import SQLiteTreeStore
from ledger.tiles import MAX_ENTRY_SIZE
from storage.blobstore import BlobStore
from storage.errors import StorageError

PAGE = 1000
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


def audit(app: DossierApp, log: MerkleLog, blobs: BlobStore, log_key: Verifier, *,
          dossier: str | None = None, progress: Progress | None = None) -> AuditReport:  # fmt: skip
    """Audit a node; ``dossier`` limits the findings and file checks to one dossier."""
    report = AuditReport()
    say = progress or (lambda stage, done, total: None)
    size = log.size
    report.leaves = size
    origin = log_key.name
    heads: dict[str, bytes] = {}
    files: set[str] = set()
    index = 0
    after: int | None = None
    while True:
        notes = app.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=after is None)
        if not notes:
            break
        after = notes[-1].id
        stored = _entries(log, index, min(size, index + len(notes)), report)
        for note in notes:
            report.events += 1
            ours = dossier is None or str(note.originator_id) == dossier
            where = _where(note.originator_id, note.originator_version, note.id)
            sealed = index < size
            if not sealed:
                report.unsealed += 1
            try:
                event = app.mapper.to_domain_event(note)
                assert isinstance(event, Dossier.Event)
                doc = envelope(origin, index, note.id, event, heads.get(str(note.originator_id)))
                expected = envelope_bytes(doc)
            except Exception as exc:  # a tampered row does not decrypt or decode
                # Continue the dossier's chain from the stored leaf, so later events are judged on their own.
                heads[str(note.originator_id)] = log.hasher.leaf(stored.get(index, b""))
                if ours:
                    report.findings.append(Finding("event_unreadable", where, f"{type(exc).__name__}: {exc}"[:300]))
                index += 1
                continue
            heads[str(note.originator_id)] = log.hasher.leaf(expected)
            if not sealed:
                if len(expected) > MAX_ENTRY_SIZE and ours:
                    report.findings.append(Finding("event_unsealable", where, f"its leaf would have {len(expected)} "
                                                   f"bytes, a leaf holds at most {MAX_ENTRY_SIZE}: the log cannot "
                                                   "seal it or anything after it"))  # fmt: skip
                index += 1
                continue
            if doc["type"] in STORED_FILES and ours:
                files.update(v for k, v in doc["body"].items() if k in KEPT)
            got = stored.get(index)
            if got is not None and got != expected and ours:
                report.findings.append(Finding("leaf_mismatch", f"leaf {index}", f"does not record {where}"))
            index += 1
        say("events", report.events, report.events)
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
            report.findings.append(Finding("blob_" + exc.code, f"blob {sha}", exc.diagnostics()))
        report.blobs = n
        say("files", n, len(files))

    roots = _recomputed_roots(log, size, [s for s, _ in log.store.checkpoints()], report)
    for s, text in log.store.checkpoints():
        report.checkpoints += 1
        try:
            checkpoint, _ = open_checkpoint(text, [log_key])
        except LedgerError as exc:
            report.findings.append(Finding("checkpoint_signature", f"checkpoint {s}", exc.diagnostics()))
            continue
        if checkpoint.size != s or (s in roots and roots[s] != checkpoint.root_hash):
            report.findings.append(Finding("checkpoint_root", f"checkpoint {s}",
                                           "its root is not the root of the recorded leaves"))  # fmt: skip
    return report


def _where(dossier: object, version: object, position: object) -> str:
    return f"event {dossier} v{version} (position {position})"


def _entries(log: MerkleLog, start: int, end: int, report: AuditReport) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for i in range(start, end):
        try:
            out[i] = log.entry(i)
        except (KeyError, LedgerError, ValueError):
            report.findings.append(Finding("leaf_missing", f"leaf {i}", "the leaf's data is gone from the store"))
            out[i] = b""
    return out


def _recomputed_roots(log: MerkleLog, size: int, sizes: list[int], report: AuditReport) -> dict[int, bytes]:
    """Roots of the tree rebuilt from the stored leaves, compared with the stored tiles' roots."""
    fresh = MerkleLog(SQLiteTreeStore(":memory:"))
    wanted = sorted({s for s in sizes if 0 < s <= size} | {size})
    roots: dict[int, bytes] = {}
    done = 0
    for target in wanted:
        while done < target:
            n = min(PAGE * 10, target - done)
            batch = []
            for i in range(done, done + n):
                try:
                    batch.append(log.entry(i))
                except (KeyError, LedgerError, ValueError):
                    batch.append(b"")
            fresh.append(batch)
            done += n
        roots[target] = fresh.root(target)
        try:
            stored = log.root(target)
        except (KeyError, LedgerError):
            stored = b""
        if target and stored != roots[target]:
            report.findings.append(Finding("tree_mismatch", f"tree size {target}",
                                           "the stored tiles disagree with the recorded leaves"))  # fmt: skip
    fresh.store.close()
    return roots
