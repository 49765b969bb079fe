"""The case dossier (电子卷宗) aggregate: every action an event, nothing ever edited.

Events are past tense and carry the actor, the actor's role and (from
eventsourcing) their UTC time. Personal data of parties sits in the event only
inside ``parties`` / ``submitter`` / ``recipient`` records, each value with its
own salt; the stored event is encrypted at rest and the ledger leaf carries the
salted commitments instead (see ``leaf_body``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from dossier import fields
from dossier.errors import DossierArchivedError, DossierReceivedError, InvalidDossierInputError, UnknownDocumentError
from evidence.commitment import PERSONAL_RECORDS, commit, new_salt

PERSONAL_FIELDS = ("name", "id_number", "phone", "address")
VOLUMES = ("正卷", "副卷")
# The 副卷 (审理报告, 合议庭评议笔录, 审判委员会讨论记录) is for the court only: lawyers and parties
# never see its documents (阅卷 covers the 正卷), and never place one there.
COURT_ONLY = "副卷"
PARTY_ROLES = ("lawyer", "party")
TRANSFER_KINDS = ("上诉", "移送", "再审")
RETENTIONS = ("永久", "长期", "短期")
_YEARS = re.compile(r"[1-9][0-9]?|100")
NAMESPACE = uuid.UUID("6b1c3f2e-5d0a-4e8b-9a51-2f0c9d7e4a10")


def dossier_id(court: str, case_number: str) -> uuid.UUID:
    """One dossier per case: its id follows from court code and case number."""
    return uuid.uuid5(NAMESPACE, f"{court}|{case_number}")


def party(record: dict[str, Any]) -> dict[str, Any]:
    """A party (当事人) as stored: role, kind, personal values, and a salt for each value."""
    if not isinstance(record, dict):
        raise InvalidDossierInputError("a party is an object")
    unknown = set(record) - {"role", "kind", *PERSONAL_FIELDS}
    if unknown:
        raise InvalidDossierInputError(f"a party has no field {sorted(map(str, unknown))[0][:50]!r}")
    out: dict[str, Any] = {"role": fields.text(record.get("role"), "party role"),
                           "kind": fields.choice(record.get("kind", "natural"), "party kind", ("natural", "legal")),
                           "salts": {}}  # fmt: skip
    for field in PERSONAL_FIELDS:
        if record.get(field) is not None:
            out[field] = fields.text(record[field], f"party {field}")
            out["salts"][field] = new_salt().hex()
    if "name" not in out:
        raise InvalidDossierInputError("a party needs a name")
    return out


def party_list(records: Any, *, most: int, least: int = 0) -> list[dict[str, Any]]:
    """A list of parties, at least ``least`` and at most ``most`` of them."""
    if not isinstance(records, list) or not least <= len(records) <= most:
        raise InvalidDossierInputError(f"parties is a list of {least} to {most}")
    return [party(p) for p in records]


def document_fields(name: Any, media_type: Any, doc_type: Any) -> dict[str, str]:
    """An upload's file name, media type and declared type, checked (before its bytes are stored)."""
    name = fields.text(name, "file name")
    if "/" in name or "\\" in name or name.strip(" .") == "":
        raise InvalidDossierInputError("a file name has no path separators and is not '.' or '..'")
    media = fields.text(media_type, "media type")
    if not media.isascii() or media.count("/") != 1 or " " in media:
        raise InvalidDossierInputError("a media type is ASCII type/subtype, e.g. application/pdf")
    declared = fields.optional_text(doc_type or None, "doc type")
    return {"name": name, "media_type": media, "doc_type": declared or ""}


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
                if key in skip or (key == "document_id" and value is None):  # a retrieval of no one document
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

    def court_only(self) -> set[str]:
        """Ids of the documents in the 副卷: placed there last (withdrawn ones too). Every event that
        names one of them (its upload, cataloguing, service, withdrawal, download) is court-only."""
        out = set()
        for doc_id, doc in self.documents.items():
            entry = self.catalogue.get(doc_id)
            if (entry["volume"] if entry is not None else doc.get("volume")) == COURT_ONLY:
                out.add(doc_id)
        return out

    def hidden_from(self, role: str) -> set[str]:
        """Ids of the documents ``role`` may not see: the 副卷's for a lawyer or a party, none for the court."""
        return self.court_only() if role in PARTY_ROLES else set()

    def hidden_files(self, hidden: set[str]) -> set[str]:
        """SHA-256 of the files only hidden documents name (the same bytes in a visible one stay visible)."""
        shown = {doc["sha256"] for k, doc in self.documents.items() if k not in hidden}
        return {self.documents[k]["sha256"] for k in hidden} - shown

    @property
    def holder(self) -> str:
        """The court that holds this dossier: its own, or the one that received a copy."""
        received = getattr(self, "received", None)
        return self.court if received is None else str(received["by_court"])

    def check_open(self) -> None:
        """Raises DossierArchivedError once the dossier is archived: nothing can be added to it."""
        if self.archived is not None:
            raise DossierArchivedError(f"dossier {self.case_number} is archived; nothing can be added")

    def ensure_own(self) -> None:
        """Content is added only to a court's own dossier, while it is open; a received one is a
        verified copy. Raises DossierArchivedError or DossierReceivedError."""
        self._own()

    def _own(self) -> None:
        """Content is added only to a court's own dossier; a received one is a verified copy."""
        self.check_open()
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

    def catalogue_document(self, *, document_id: Any, volume: Any, category: Any, order: Any, title: Any,
                           pages: Any = None, auto: Any, actor: Any, role: Any) -> None:  # fmt: skip
        self._own()
        document_id = fields.text(document_id, "document id")
        self._document(document_id)
        acting = fields.who(actor, role)
        volume = fields.choice(volume, "volume", VOLUMES)
        if volume == COURT_ONLY and acting["role"] in PARTY_ROLES:
            raise InvalidDossierInputError("a lawyer or party places documents only in the 正卷")
        self._catalogued(document_id=document_id, volume=volume, category=fields.text(category, "category"),
                         order=fields.count(order, "order", most=fields.MAX_ORDER),
                         title=fields.text(title, "title"),
                         pages=fields.optional_count(pages, "pages", most=fields.MAX_PAGES),
                         auto=fields.flag(auto, "auto"), **acting)  # fmt: skip

    @event("Catalogued")
    def _catalogued(self, document_id: str, volume: str, category: str, order: int, title: str,
                    pages: int | None, auto: bool, actor: str, role: str) -> None:  # fmt: skip
        self.catalogue[document_id] = {"volume": volume, "category": category, "order": order, "title": title,
                                       "pages": pages, "auto": auto}  # fmt: skip
        doc = self.documents.get(document_id)
        if doc is not None:  # kept when withdrawn: a 副卷 document stays hidden
            doc["volume"] = volume

    def withdraw(self, document_id: Any, reason: Any, actor: Any, role: Any) -> None:
        self._own()
        document_id = fields.text(document_id, "document id")
        self._document(document_id)
        self._withdrawn(document_id=document_id, reason=fields.text(reason, "reason", multiline=True),
                        **fields.who(actor, role))  # fmt: skip

    @event("DocumentWithdrawn")
    def _withdrawn(self, document_id: str, reason: str, actor: str, role: str) -> None:
        self.documents[document_id]["withdrawn"] = reason
        self.catalogue.pop(document_id, None)

    def submit_evidence(self, **kw: Any) -> None:
        self._own()
        self._evidence(**{**kw, "submitter": party(kw["submitter"]), **fields.who(kw["actor"], kw["role"])})

    @event("EvidenceSubmitted")
    def _evidence(self, evidence_id: str, sha256: str, size: int, name: str, submitter: dict[str, Any],
                  description: str, actor: str, role: str) -> None:  # fmt: skip
        self.evidence[evidence_id] = {"sha256": sha256, "size": size, "name": name, "description": description}

    def record_service(self, **kw: Any) -> None:
        self._own()
        self._document(fields.text(kw["document_id"], "document id"))
        self._service(**{**kw, "recipient": party(kw["recipient"]), **fields.who(kw["actor"], kw["role"])})

    @event("ServiceRecorded")
    def _service(self, document_id: str, recipient: dict[str, Any], channel: str, sent_at: str,
                 delivered_at: str | None, read_at: str | None, receipt_sha256: str | None,
                 actor: str, role: str) -> None:  # fmt: skip
        self.documents[document_id].setdefault("services", []).append(channel)

    def register_contract(self, **kw: Any) -> None:
        self._own()
        signed = party_list(kw["parties"], least=1, most=fields.MAX_CONTRACT_PARTIES)
        self._contract(**{**kw, "parties": signed, **fields.who(kw["actor"], kw["role"])})

    @event("ContractRegistered")
    def _contract(self, contract_sha256: str, parties: list[dict[str, Any]], signed_at: str,
                  actor: str, role: str) -> None:  # fmt: skip
        pass

    def transfer(self, to_court: str, kind: Any, reason: Any, actor: Any, role: Any) -> None:
        self.check_open()
        kind = fields.choice(kind, "a transfer", TRANSFER_KINDS)
        self._transferred(to_court=to_court, kind=kind, reason=fields.text(reason, "reason", multiline=True),
                          **fields.who(actor, role))  # fmt: skip

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
            self.documents[document_id]["volume"] = catalogue.get("volume")

    def archive(self, retention: Any, package_sha256: str, actor: Any, role: Any) -> None:
        self.check_open()
        if not isinstance(retention, str) or not (retention in RETENTIONS or _YEARS.fullmatch(retention)):
            raise InvalidDossierInputError("retention is 永久, 长期, 短期 or a number of years from 1 to 100")
        self._archived(retention=retention, package_sha256=package_sha256, **fields.who(actor, role))

    @event("Archived")
    def _archived(self, retention: str, package_sha256: str, actor: str, role: str) -> None:
        self.archived = {"retention": retention, "package_sha256": package_sha256}

    @event("FileRepaired")
    def file_repaired(self, sha256: str, size: int, source: str, reason: str, actor: str, role: str) -> None:
        """A file the dossier holds, found corrupt or gone by the fixity check and put back from another
        copy (dossier/fixity.py): allowed also when archived, like a read."""

    def link_first_instance(self, *, dossier: str, case_number: str, court: str, actor: Any, role: Any) -> None:
        """Name the first-instance dossier this one (a 二审, 再审) continues: one this court holds."""
        self._own()
        if getattr(self, "first_instance", None) is not None:
            raise InvalidDossierInputError("this dossier already names its first-instance dossier")
        self._first_instance(first_instance=dossier, first_case_number=case_number, first_court=court,
                             **fields.who(actor, role))  # fmt: skip

    @event("FirstInstanceLinked")
    def _first_instance(self, first_instance: str, first_case_number: str, first_court: str, actor: str,
                        role: str) -> None:  # fmt: skip
        self.first_instance = {"dossier": first_instance, "case_number": first_case_number, "court": first_court}

    @event("Retrieved")
    def retrieved(self, by_court: str, by: str, reason: str, actor: str, role: str,
                  document_id: str | None = None) -> None:  # fmt: skip
        """A read of the dossier's content (调阅): allowed also when archived, and always recorded.
        A read of one document (a download) names it, and is then court-only with a 副卷 document."""
