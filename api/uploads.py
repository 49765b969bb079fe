"""What an upload answers: the file, where it was placed, and the event that recorded it, with its receipt."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from dossier.domain import Dossier
from ledger.errors import SifaError


def uploaded_answer(dossier: str, result: dict[str, Any]) -> dict[str, Any]:
    """An upload's answer from the library's result. The upload records ``DocumentUploaded`` and then
    ``Catalogued`` in one save: ``version`` is the dossier's after both, the file's event the one before
    (its receipt's leaf carries the file's SHA-256 and size; the ``Catalogued`` leaf does not)."""
    ident = str(UUID(dossier))
    event_version = int(result["version"]) - 1
    return {**result, "dossier": ident, "event": "DocumentUploaded", "event_version": event_version,
            "receipt": f"/v1/dossiers/{ident}/receipts/{event_version}"}  # fmt: skip


class DocumentExistsError(SifaError):
    """The same bytes are already a document of this dossier: the route answers with that one (200)."""

    code = "document_exists"


class FirstCopy:
    """One file, one document: a second upload of the same bytes to a dossier adds nothing and is
    answered (200, ``already_recorded: true``) with the first document, its event and its receipt, so a
    retried or double-clicked upload never files a duplicate. A withdrawn document does not count;
    nor, for a lawyer or party, does one they cannot see (a 副卷 document: naming it would tell them
    it exists — theirs becomes a document of its own in the 正卷).

    The stream is hashed as it passes (``wrap``); ``guard`` runs inside the command, after the bytes
    are stored, on the dossier as the command sees it — two uploads of one file at once cannot both pass."""

    def __init__(self, dossier: str, role: str, guard: Callable[[Dossier], None]) -> None:
        self.dossier, self.role, self.outer = dossier, role, guard
        self.hash = hashlib.sha256()
        self.done = False

    def wrap(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.hash.update(chunk)
            yield chunk
        self.done = True

    def guard(self, d: Dossier) -> None:
        self.outer(d)
        if not self.done:  # the first look, before the bytes arrive
            return
        sha, hidden = self.hash.hexdigest(), d.hidden_from(self.role)
        for doc_id, doc in d.documents.items():
            if doc["sha256"] == sha and not doc.get("withdrawn") and doc_id not in hidden:
                ident = str(UUID(self.dossier))
                raise DocumentExistsError(
                    f"this file is already document {doc_id} ({doc['name']}) of the dossier; nothing was added",
                    document_id=doc_id, sha256=sha, receipt=f"/v1/dossiers/{ident}/files/{sha}/receipt")  # fmt: skip


def first_answer(services: Any, dossier: str, exc: DocumentExistsError) -> dict[str, Any]:
    """The answer to a second upload of the same file: the first document, as its upload answered."""
    d = services.dossiers.get(dossier)
    doc_id = str(exc.detail["document_id"])
    doc, entry = d.documents[doc_id], d.catalogue.get(doc_id, {})
    uploads = ("DocumentUploaded", "DocumentReceived")
    events = services.dossiers.repository.event_store.get(d.id, lte=d.version)
    event = next(e.originator_version for e in events if type(e).__name__ in uploads and e.document_id == doc_id)
    ident = str(d.id)
    return {"dossier": ident, "version": d.version, "document_id": doc_id, "sha256": doc["sha256"],
            "size": doc["size"], "media_type": doc["media_type"], "pages": doc["pages"],
            "category": entry.get("category", ""), "placed_by": "an earlier upload", "event": "DocumentUploaded",
            "event_version": event, "receipt": f"/v1/dossiers/{ident}/receipts/{event}",
            "already_recorded": True}  # fmt: skip
