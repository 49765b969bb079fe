"""Writing a dossier package (BagIt, ``sifa-package/1``; the format is in evidence/package.py).

``plan_package`` gathers what is small — every event's leaf and inclusion proof against one
checkpoint, the disclosures, the catalogue, the manifests — and ``PackagePlan.stream`` then
streams the tar: tag files first, then each file straight from the blob store, in chunks. The
length is known before the first byte (Content-Length), and a 10 GB dossier never sits in memory.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from dossier.domain import Dossier
from dossier.envelope import read_leaf
from dossier.errors import NotSealedError
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
from storage.blobstore import BlobStore

if TYPE_CHECKING:
    from dossier.sealer import Sealer


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

    def stream(self, blobs: BlobStore) -> Iterator[bytes]:
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


def wait_sealed(sealer: Sealer, dossier: UUID, version: int, timeout: float) -> tuple[list[int], str]:
    """The leaf indices of events 1..version and the note of a checkpoint covering them all.

    Prefers the newest checkpoint with the witness quorum. Raises NotSealedError after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        indices = sealer.log.find(f"dossier:{dossier}")[:version]
        kept = sealer.log.store.checkpoint()
        if len(indices) == version and kept is not None and kept[0] > indices[-1]:
            break
        if time.monotonic() > deadline:
            raise NotSealedError(f"the dossier's events up to version {version} are not in a signed checkpoint yet; "
                                 "try again in a moment")  # fmt: skip
        time.sleep(0.02)
    size = sealer.witnessed_size(indices[-1])
    chosen = sealer.log.store.checkpoint(size) if size is not None else kept
    assert chosen is not None
    return indices, chosen[1]


def plan_package(sealer: Sealer, dossier: UUID | str, *, court_name: str, purpose: str, personal: bool = True,
                 court: bool = True, inspection: dict[str, Any] | None = None,
                 wait: float = 10.0) -> PackagePlan:  # fmt: skip
    """Plan the package of a dossier as it stands now (every event sealed, waiting up to ``wait``).

    ``personal``: include the disclosures that open the leaves' commitments (party data in
    clear) — for a court, not for a lawyer's or party's copy. ``court=False`` (a lawyer's or party's
    copy): every event of a 副卷 document is withheld — carried as its leaf hash and proof only, so
    the chain stays whole and shows nothing of it — and so are its files and catalogue entries.
    """
    app, log = sealer.app, sealer.log
    current = app.get(dossier, copy=False)
    ident, version = current.id, current.version
    indices, note_text = wait_sealed(sealer, ident, version, wait)
    checkpoint = Checkpoint.from_text(Note.from_text(note_text).text)
    state: Dossier = app.repository.get(ident, version=version)
    hidden = set() if court else state.court_only()
    lines: list[bytes] = []
    files: dict[str, int] = {}
    withheld: set[int] = set()
    for v, index in enumerate(indices, start=1):
        leaf = log.entry(index)
        doc = read_leaf(leaf)
        if doc["version"] != v:  # the label index and the leaves disagree: never package that
            raise NotSealedError(f"leaf {index} is not event {v} of dossier {ident}; run sifa audit")
        proof = log.inclusion_proof(index, checkpoint.size)
        if doc["body"].get("document_id") in hidden:
            lines.append(withheld_line(v, index, log.hasher.leaf(leaf), proof))
            withheld.add(v)
            continue
        lines.append(event_line(v, index, leaf, proof))
        if doc["type"] in UPLOADS:
            files.setdefault(doc["body"]["sha256"], doc["body"]["size"])
    disclosures: dict[str, dict[str, Any]] = {}
    if personal:
        for e in app.repository.event_store.get(ident, lte=version):
            records = {k: v for k, v in vars(e).items() if k in PERSONAL_RECORDS and v}
            if records and e.originator_version not in withheld:
                disclosures[str(e.originator_version)] = records
    now = datetime.now(UTC)
    info = [("Source-Organization", court_name), ("External-Identifier", state.case_number),
            ("Bagging-Date", now.date().isoformat()),
            ("Payload-Oxum", f"{sum(files.values())}.{len(files)}"),
            ("Sifa-Format", FORMAT), ("Sifa-Origin", checkpoint.origin), ("Sifa-Court", state.court),
            ("Sifa-Dossier", str(ident)), ("Sifa-Version", str(version)),
            ("Sifa-Tree-Size", str(checkpoint.size)), ("Sifa-Purpose", purpose)]  # fmt: skip
    sifa = [(CHECKPOINT, note_text.encode("utf-8")), (EVENTS, b"".join(lines)),
            (DISCLOSURES, json.dumps(disclosures, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")),
            (CATALOGUE, catalogue_html(state, court_name, hidden).encode("utf-8"))]  # fmt: skip
    if inspection is not None:
        sifa.append((INSPECTION, json.dumps(inspection, ensure_ascii=False, indent=1).encode("utf-8")))
    manifest = manifest_text((sha, f"data/{sha}") for sha in files)
    head = [(BAGIT, BAGIT_TEXT), (INFO, info_text(info)), (MANIFEST, manifest)]
    tagmanifest = manifest_text((hashlib.sha256(d).hexdigest(), n) for n, d in [*head, *sifa])
    return PackagePlan(ident, version, [*head, (TAGMANIFEST, tagmanifest), *sifa], list(files.items()),
                       int(now.timestamp()))  # fmt: skip


def catalogue_rows(state: Dossier, hidden: Collection[str] = ()) -> list[dict[str, Any]]:
    """The 卷内目录 in order (正卷 then 副卷), with each entry's first and last page; ``hidden``
    documents left out."""
    rows = sorted(({"document_id": k, **v} for k, v in state.catalogue.items() if k not in hidden),
                  key=lambda e: (e["volume"] != "正卷", e["order"], e["title"]))  # fmt: skip
    page = {"正卷": 1, "副卷": 1}
    for row in rows:
        doc = state.documents.get(row["document_id"], {})
        row["sha256"], row["name"] = doc.get("sha256"), doc.get("name")
        pages = row.get("pages")
        if isinstance(pages, int) and pages > 0:
            row["first_page"], row["last_page"] = page[row["volume"]], page[row["volume"]] + pages - 1
            page[row["volume"]] += pages
        else:
            row["first_page"] = row["last_page"] = None
    return rows


def _pages(row: dict[str, Any]) -> str:
    return "" if row["first_page"] is None else f"{row['first_page']}–{row['last_page']}"


def catalogue_html(state: Dossier, court_name: str, hidden: Collection[str] = ()) -> str:
    """The 卷内目录 as a page a clerk can open and print; each entry links to its file in the bag."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{n}</td><td>{e(r['volume'])}</td><td>{e(r['category'])}</td>"
        f'<td><a href="../data/{e(r["sha256"] or "")}">{e(r["title"])}</a></td>'
        f"<td>{_pages(r)}</td>"
        f"<td><code>{e(r['sha256'] or '')}</code></td></tr>\n"
        for n, r in enumerate(catalogue_rows(state, hidden), start=1)
    )
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>卷内目录 {e(state.case_number)}</title>"
        "<style>body{font:16px/1.5 sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #888;padding:.3em .6em}code{font-size:12px}</style></head><body>\n"
        f"<h1>卷内目录</h1>\n<p>{e(court_name)} · 案号 {e(state.case_number)} · {e(state.case_type)}</p>\n"
        "<table><thead><tr><th>序号</th><th>卷别</th><th>类别</th><th>题名</th><th>页号</th><th>SHA-256</th>"
        f"</tr></thead><tbody>\n{rows}</tbody></table>\n</body></html>\n"
    )
