"""The case dossier (电子卷宗) aggregate: every action an event, nothing ever edited.

Events are past tense and carry the actor, the actor's role and (from
eventsourcing) their UTC time. Personal data of parties sits in the event only
inside ``parties`` / ``submitter`` / ``recipient`` records, each value with its
own salt; the stored event is encrypted at rest and the ledger leaf carries the
salted commitments instead (see ``leaf_body``).
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from dossier.errors import DossierArchivedError, DossierReceivedError, InvalidDossierInputError, UnknownDocumentError
from evidence.commitment import PERSONAL_RECORDS, commit, new_salt

PERSONAL_FIELDS = ("name", "id_number", "phone", "address")
VOLUMES = ("正卷", "副卷")
NAMESPACE = uuid.UUID("6b1c3f2e-5d0a-4e8b-9a51-2f0c9d7e4a10")


def dossier_id(court: str, case_number: str) -> uuid.UUID:
    """One dossier per case: its id follows from court code and case number."""
    return uuid.uuid5(NAMESPACE, f"{court}|{case_number}")


def nfc(value: Any, what: str, *, max_len: int = 2000, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidDossierInputError(f"{what} must be a non-empty text")
    text = unicodedata.normalize("NFC", value)
    if len(text) > max_len or any(ord(c) < 0x20 and c not in "\t\n" for c in text):
        raise InvalidDossierInputError(f"{what} is too long or holds control characters")
    return text


def party(record: dict[str, Any]) -> dict[str, Any]:
    """A party (当事人) as stored: role, kind, personal values, and a salt for each value."""
    if not isinstance(record, dict):
        raise InvalidDossierInputError("a party is an object")
    out: dict[str, Any] = {"role": nfc(record.get("role"), "party role", max_len=50),
                           "kind": record.get("kind", "natural"), "salts": {}}  # fmt: skip
    if out["kind"] not in ("natural", "legal"):
        raise InvalidDossierInputError("party kind is 'natural' or 'legal'")
    for field in PERSONAL_FIELDS:
        if record.get(field) is not None:
            out[field] = nfc(record[field], f"party {field}", max_len=500)
            out["salts"][field] = new_salt().hex()
    if "name" not in out:
        raise InvalidDossierInputError("a party needs a name")
    return out


def committed(record: dict[str, Any]) -> dict[str, Any]:
    """A stored party as it may enter a leaf: commitments, no personal value."""
    return {
        "role": record["role"],
        "kind": record["kind"],
        "commitments": {f: commit(record[f], bytes.fromhex(record["salts"][f])) for f in record["salts"]},
    }


class Dossier(Aggregate):
    """One case's electronic dossier."""

    class Event(Aggregate.Event):
        def leaf_body(self) -> dict[str, Any]:
            """The event's fields for its ledger leaf, personal data as commitments."""
            skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
            body: dict[str, Any] = {}
            for key, value in vars(self).items():
                if key in skip:
                    continue
                if key in PERSONAL_RECORDS:
                    value = [committed(p) for p in value] if isinstance(value, list) else committed(value)
                body[key] = value
            return body

    @staticmethod
    def create_id(court: str, case_number: str, **_: Any) -> uuid.UUID:
        return dossier_id(court, case_number)

    @event("Opened")
    def __init__(self, court: str, case_number: str, case_type: str, parties: list[dict[str, Any]],
                 actor: str, role: str) -> None:  # fmt: skip
        self.court, self.case_number, self.case_type = court, case_number, case_type
        self.parties = parties
        self.documents: dict[str, dict[str, Any]] = {}
        self.catalogue: dict[str, dict[str, Any]] = {}
        self.evidence: dict[str, dict[str, Any]] = {}
        self.transfers: list[dict[str, Any]] = []
        self.archived: dict[str, Any] | None = None
        self.received: dict[str, Any] | None = None

    @property
    def holder(self) -> str:
        """The court that holds this dossier: its own, or the one that received a copy."""
        received = getattr(self, "received", None)
        return self.court if received is None else str(received["by_court"])

    def _open(self) -> None:
        if self.archived is not None:
            raise DossierArchivedError(f"dossier {self.case_number} is archived; nothing can be added")

    def _own(self) -> None:
        """Content is added only to a court's own dossier; a received one is a verified copy."""
        self._open()
        received = getattr(self, "received", None)  # dossiers snapshotted before receiving existed lack it
        if received is not None:
            raise DossierReceivedError(f"dossier {self.case_number} was received from court {received['from_court']}; "
                                       "it is a copy and is not changed here")  # fmt: skip

    def _document(self, document_id: str) -> dict[str, Any]:
        doc = self.documents.get(document_id)
        if doc is None or doc.get("withdrawn"):
            raise UnknownDocumentError(f"no document {document_id} in dossier {self.case_number}")
        return doc

    # Each command checks, then triggers its event; the @event body only applies it.
    def upload(self, **kw: Any) -> None:
        self._own()
        self._upload(**kw)

    @event("DocumentUploaded")
    def _upload(self, document_id: str, sha256: str, size: int, name: str, media_type: str, source: str,
                doc_type: str, pages: int | None, actor: str, role: str) -> None:  # fmt: skip
        self.documents[document_id] = {"sha256": sha256, "size": size, "name": name, "media_type": media_type,
                                       "source": source, "doc_type": doc_type, "pages": pages}  # fmt: skip

    def catalogue_document(self, **kw: Any) -> None:
        self._own()
        self._document(kw["document_id"])
        if kw["volume"] not in VOLUMES:
            raise InvalidDossierInputError(f"volume is one of {VOLUMES}")
        self._catalogued(**kw)

    @event("Catalogued")
    def _catalogued(self, document_id: str, volume: str, category: str, order: int, title: str,
                    pages: int | None, auto: bool, actor: str, role: str) -> None:  # fmt: skip
        self.catalogue[document_id] = {"volume": volume, "category": category, "order": order, "title": title,
                                       "pages": pages, "auto": auto}  # fmt: skip

    def withdraw(self, document_id: str, reason: str, actor: str, role: str) -> None:
        self._own()
        self._document(document_id)
        self._withdrawn(document_id=document_id, reason=nfc(reason, "reason"), actor=actor, role=role)

    @event("DocumentWithdrawn")
    def _withdrawn(self, document_id: str, reason: str, actor: str, role: str) -> None:
        self.documents[document_id]["withdrawn"] = reason
        self.catalogue.pop(document_id, None)

    def submit_evidence(self, **kw: Any) -> None:
        self._own()
        self._evidence(**{**kw, "submitter": party(kw["submitter"])})

    @event("EvidenceSubmitted")
    def _evidence(self, evidence_id: str, sha256: str, size: int, name: str, submitter: dict[str, Any],
                  description: str, actor: str, role: str) -> None:  # fmt: skip
        self.evidence[evidence_id] = {"sha256": sha256, "size": size, "name": name, "description": description}

    def record_service(self, **kw: Any) -> None:
        self._own()
        self._document(kw["document_id"])
        self._service(**{**kw, "recipient": party(kw["recipient"])})

    @event("ServiceRecorded")
    def _service(self, document_id: str, recipient: dict[str, Any], channel: str, sent_at: str,
                 delivered_at: str | None, read_at: str | None, receipt_sha256: str | None,
                 actor: str, role: str) -> None:  # fmt: skip
        self.documents[document_id].setdefault("services", []).append(channel)

    def register_contract(self, **kw: Any) -> None:
        self._own()
        if not isinstance(kw["parties"], list):
            raise InvalidDossierInputError("parties is a list")
        self._contract(**{**kw, "parties": [party(p) for p in kw["parties"]]})

    @event("ContractRegistered")
    def _contract(self, contract_sha256: str, parties: list[dict[str, Any]], signed_at: str,
                  actor: str, role: str) -> None:  # fmt: skip
        pass

    def transfer(self, to_court: str, kind: str, reason: str, actor: str, role: str) -> None:
        self._open()
        if kind not in ("上诉", "移送", "再审"):
            raise InvalidDossierInputError("a transfer is 上诉, 移送 or 再审")
        self._transferred(to_court=to_court, kind=kind, reason=nfc(reason, "reason"), actor=actor, role=role)

    @event("Transferred")
    def _transferred(self, to_court: str, kind: str, reason: str, actor: str, role: str) -> None:
        self.transfers.append({"to_court": to_court, "kind": kind, "reason": reason})

    def receive(self, **kw: Any) -> None:
        """Mark a dossier, just opened from a verified package, as received from another court."""
        if self.version != 1:
            raise InvalidDossierInputError("only a dossier just opened from a package is received")
        self._received(**kw)

    @event("Received")
    def _received(self, by_court: str, from_court: str, from_origin: str, kind: str, dossier_version: int,
                  checkpoint_size: int, checkpoint_root: str, first_leaf: int, last_leaf: int, last_leaf_hash: str,
                  events_sha256: str, checkpoint_sha256: str, files: int, total_bytes: int, actor: str,
                  role: str) -> None:  # fmt: skip
        """Points back to the originals: the lower court's log, checkpoint and leaves, and the kept
        blobs holding every original leaf with its proof (``events_sha256``) and the checkpoint."""
        self.received = {"by_court": by_court, "from_court": from_court, "from_origin": from_origin, "kind": kind,
                         "dossier_version": dossier_version, "checkpoint_size": checkpoint_size,
                         "first_leaf": first_leaf, "last_leaf": last_leaf, "events_sha256": events_sha256}  # fmt: skip

    def document_received(self, **kw: Any) -> None:
        if self.received is None:
            raise InvalidDossierInputError("documents are received only into a received dossier")
        self._document_received(**kw)

    @event("DocumentReceived")
    def _document_received(self, document_id: str, sha256: str, size: int, name: str, media_type: str, source: str,
                           doc_type: str, pages: int | None, catalogue: dict[str, Any] | None, original_leaf: int,
                           actor: str, role: str) -> None:  # fmt: skip
        self.documents[document_id] = {"sha256": sha256, "size": size, "name": name, "media_type": media_type,
                                       "source": source, "doc_type": doc_type, "pages": pages,
                                       "original_leaf": original_leaf}  # fmt: skip
        if catalogue is not None:
            self.catalogue[document_id] = catalogue

    def archive(self, retention: str, package_sha256: str, actor: str, role: str) -> None:
        self._open()
        if retention not in ("永久", "长期", "短期") and not (retention.isdigit() and 0 < int(retention) <= 100):
            raise InvalidDossierInputError("retention is 永久, 长期, 短期 or a number of years")
        self._archived(retention=retention, package_sha256=package_sha256, actor=actor, role=role)

    @event("Archived")
    def _archived(self, retention: str, package_sha256: str, actor: str, role: str) -> None:
        self.archived = {"retention": retention, "package_sha256": package_sha256}

    @event("Retrieved")
    def retrieved(self, by_court: str, by: str, reason: str, actor: str, role: str) -> None:
        """A read of the dossier's content (调阅): allowed also when archived, and always recorded."""
