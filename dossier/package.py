"""Writing a dossier package (BagIt, ``sifa-package/1``; the format is in evidence/package.py).

``plan_package`` gathers what is small — every event's leaf and inclusion proof against one
checkpoint, the disclosures, the catalogue, the manifests — and ``PackagePlan.stream`` then
streams the tar: tag files first, then each file straight from the blob store, in chunks. The
length is known before the first byte (Content-Length), and a 10 GB dossier never sits in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from dossier.directory import directory_html, recorded_days
from dossier.domain import Dossier
from dossier.envelope import disclosures_of, is_v2, read_leaf
from dossier.errors import NotSealedError
from dossier.private import PrivateEvent
from dossier.sealed import sealed
from evidence.commitment import PERSONAL_RECORDS
from evidence.package import (
    BAGIT,
    BAGIT_TEXT,
    CATALOGUE,
    CHECKPOINT,
    DISCLOSURES,
    EVENTS,
    FORMAT,
    INFO,
    INSPECTION,
    MANIFEST,
    TAGMANIFEST,
    TAR_END,
    UPLOADS,
    event_line,
    info_text,
    manifest_text,
    member_bytes,
    tar_header,
    tar_padding,
    withheld_line,
)
from ledger.checkpoint import Checkpoint
from ledger.note import Note

if TYPE_CHECKING:
    from dossier.sealer import Sealer


class FileSource(Protocol):
    """Where a package's files are read from: the blob store, or the copies an inspection kept."""

    def read(self, sha256: str, *, size: int | None = None) -> Iterator[bytes]: ...


@dataclass
class PackagePlan:
    """Everything of a package but the files' bytes."""

    dossier: UUID
    version: int
    tags: list[tuple[str, bytes]]  # stream order
    files: list[tuple[str, int]]  # (sha256, size), stream order
    mtime: int

    @property
    def size(self) -> int:
        """The tar stream's length in bytes."""
        return (sum(member_bytes(n, len(d), self.mtime) for n, d in self.tags)
                + sum(member_bytes(f"data/{s}", n, self.mtime) for s, n in self.files) + len(TAR_END))  # fmt: skip

    def stream(self, blobs: FileSource) -> Iterator[bytes]:
        for name, data in self.tags:
            yield tar_header(name, len(data), self.mtime) + data + tar_padding(len(data))
        for sha, size in self.files:
            yield tar_header(f"data/{sha}", size, self.mtime)
            sent = 0
            for chunk in blobs.read(sha, size=size):  # verified as it streams (storage/blobstore.py)
                sent += len(chunk)
                yield chunk
            if sent != size:  # the store changed under us: cut the stream rather than send a lie
                raise OSError(f"blob {sha} gave {sent} bytes, not {size}")
            yield tar_padding(size)
        yield TAR_END


def plan_package(sealer: Sealer, dossier: UUID | str, *, court_name: str, purpose: str, personal: bool = True,
                 court: bool = True, inspection: dict[str, Any] | None = None, role: str | None = None,
                 principal: str | None = None, version: int | None = None) -> PackagePlan:  # fmt: skip
    """Plan the package of a dossier as it stood at ``version`` (default: now). Every event up to it
    must be sealed (raises NotSealedError; dossier/sealed.py waits for that).

    Disclosures: a ``sifa-leaf/2`` event carries those ``role`` may be shown (evidence.labels
    ``visible_paths``: staff — the default — and a receiving court all; ``lawyer``/``party``, with
    ``principal`` their own id, all but other principals' ids). ``personal``: for a ``sifa-leaf/1``
    event, include the party records that open its commitments — for a court, not for a lawyer's or
    party's copy (and without ``role``, a copy without ``personal`` is a lawyer's). ``court=False``
    (a lawyer's or party's copy): every event of a 副卷 document is withheld — carried as its leaf
    hash and proof only, so the chain stays whole and shows nothing of it — and so are its files and
    catalogue entries.
    """
    app, log = sealer.app, sealer.log
    current = app.get(dossier, copy=False)
    ident, version = current.id, version if version is not None else current.version
    indices, note_text = sealed(sealer, ident, version)
    checkpoint = Checkpoint.from_text(Note.from_text(note_text).text)
    state: Dossier = app.repository.get(ident, version=version)
    hidden = set() if court else state.court_only()
    role = role or ("staff" if personal else "lawyer")
    stored = list(app.repository.event_store.get(ident, lte=version))
    lines: list[bytes] = []
    v2: set[int] = set()
    files: dict[str, int] = {}
    withheld: set[int] = set()
    for v, index in enumerate(indices, start=1):
        leaf = log.entry(index)
        doc = read_leaf(leaf)
        if doc["version"] != v:  # the label index and the leaves disagree: never package that
            raise NotSealedError(f"leaf {index} is not event {v} of dossier {ident}; run sifa audit")
        proof = log.inclusion_proof(index, checkpoint.size)
        event = stored[v - 1]
        # Which documents it names, from the stored event (a private event's leaf holds them only as commitments)
        named = {i for i in (vars(event).get(k) for k in ("document_id", "receipt_document_id")) if isinstance(i, str)}
        if named & hidden:
            lines.append(withheld_line(v, index, log.hasher.leaf(leaf), proof))
            withheld.add(v)
            continue
        lines.append(event_line(v, index, leaf, proof))
        if is_v2(leaf):
            v2.add(v)
        if doc["type"] in UPLOADS:
            files.setdefault(vars(event)["sha256"], vars(event)["size"])
    disclosures: dict[str, Any] = {}
    for e in stored:
        if e.originator_version in withheld:
            continue
        if e.originator_version in v2:  # sifa-leaf/2: what the holder's role may read
            assert isinstance(e, Dossier.Event)
            shown = disclosures_of(e, sealer.secret, role=role, principal=principal)
            if shown:
                disclosures[str(e.originator_version)] = [d.to_json() for d in shown]
        elif personal and not isinstance(e, PrivateEvent):  # sifa-leaf/1: the party records
            records = {k: v for k, v in vars(e).items() if k in PERSONAL_RECORDS and v}
            if records:
                disclosures[str(e.originator_version)] = records
    days = recorded_days(app.repository.event_store.get(ident, lte=version))
    now = datetime.now(UTC)
    info = [("Source-Organization", court_name), ("External-Identifier", state.case_number),
            ("Bagging-Date", now.date().isoformat()),
            ("Payload-Oxum", f"{sum(files.values())}.{len(files)}"),
            ("Sifa-Format", FORMAT), ("Sifa-Origin", checkpoint.origin), ("Sifa-Court", state.court),
            ("Sifa-Dossier", str(ident)), ("Sifa-Version", str(version)),
            ("Sifa-Tree-Size", str(checkpoint.size)), ("Sifa-Purpose", purpose)]  # fmt: skip
    sifa = [(CHECKPOINT, note_text.encode("utf-8")), (EVENTS, b"".join(lines)),
            (DISCLOSURES, json.dumps(disclosures, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")),
            (CATALOGUE, directory_html(state, court_name, hidden, days).encode("utf-8"))]  # fmt: skip
    if inspection is not None:
        sifa.append((INSPECTION, json.dumps(inspection, ensure_ascii=False, indent=1).encode("utf-8")))
    manifest = manifest_text((sha, f"data/{sha}") for sha in files)
    head = [(BAGIT, BAGIT_TEXT), (INFO, info_text(info)), (MANIFEST, manifest)]
    tagmanifest = manifest_text((hashlib.sha256(d).hexdigest(), n) for n, d in [*head, *sifa])
    return PackagePlan(ident, version, [*head, (TAGMANIFEST, tagmanifest), *sifa], list(files.items()),
                       int(now.timestamp()))  # fmt: skip
