"""The dossier application: commands that check, record events, and save atomically.

Persistence is whatever eventsourcing module the environment names: SQLite by
default, PostgreSQL in production; events are encrypted at rest (AES-GCM via
``cryptography``) so party data in them stays private. Blobs go to the blob
store the node was given; only their SHA-256 and size enter events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from dossier.catalogue import pdf_info, place
from dossier.courts import CASE_TYPES, CourtRegistry, case_number
from dossier.domain import Dossier, nfc, party
from dossier.errors import (
    DossierConflictError,
    DossierExistsError,
    DossierNotFoundError,
    EventStoreUnavailableError,
    InvalidDossierInputError,
)
from storage.blobstore import BlobStore, Source

SOURCES = ("court", "party", "lawyer")
# Recently used dossiers stay in memory and are fast-forwarded from the store on each read (so
# several workers stay consistent); a snapshot every 100 events bounds a cold read's replay.
CACHE = {"AGGREGATE_CACHE_MAXSIZE": "1000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sqlite_env(path: str, cipher_key: str) -> dict[str, str]:
    """Environment for the embedded default: events in one SQLite file, encrypted."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "10",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": cipher_key,
        **CACHE,
    }


def postgres_env(host: str, port: int, user: str, dbname: str, password: str, cipher_key: str) -> dict[str, str]:
    """Environment for production: events in PostgreSQL, encrypted."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": user,
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_PASSWORD": password,
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": cipher_key,
        **CACHE,
    }


def _sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidDossierInputError(f"{what} must be a SHA-256 in lower-case hex")
    return value


class DossierApp(Application[UUID]):
    """Open, fill, transfer, archive and read case dossiers."""

    name = "sifa"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {Dossier: 100}

    def __init__(self, env: Mapping[str, str], blobs: BlobStore, courts: CourtRegistry, court: str) -> None:
        super().__init__(env)
        self.blobs, self.courts, self.court = blobs, courts, court

    def get(self, dossier: UUID | str) -> Dossier:
        try:
            ident = dossier if isinstance(dossier, UUID) else UUID(str(dossier))
            found: Dossier = self.repository.get(ident)
        except (AggregateNotFoundError, ValueError):
            raise DossierNotFoundError(f"no dossier {dossier}") from None
        except (OperationalError, InterfaceError) as exc:
            raise EventStoreUnavailableError("the event store does not answer; nothing was changed") from exc
        return found

    def _save(self, aggregate: Dossier) -> None:
        try:
            self.save(aggregate)
        except (OperationalError, InterfaceError) as exc:
            raise EventStoreUnavailableError("the event store does not answer; nothing was recorded") from exc
        except IntegrityError as exc:
            if aggregate.version == 1:
                raise DossierExistsError(f"case {aggregate.case_number} already has a dossier") from exc
            raise DossierConflictError("the dossier changed meanwhile; read it again and retry") from exc

    def open_dossier(self, *, case_number_text: str, case_type: str, parties: list[dict[str, Any]],
                     actor: str, role: str) -> UUID:  # fmt: skip
        number = case_number(case_number_text)
        if case_type not in CASE_TYPES:
            raise InvalidDossierInputError(f"case type is one of {', '.join(CASE_TYPES)}")
        if not isinstance(parties, list) or len(parties) > 200:
            raise InvalidDossierInputError("parties is a list of at most 200")
        d = Dossier(court=self.court, case_number=number, case_type=case_type,
                    parties=[party(p) for p in parties], actor=actor, role=role)  # fmt: skip
        self._save(d)
        return d.id

    def upload(self, dossier: UUID | str, stream: Source, *, name: str, media_type: str, source: str,
               doc_type: str | None, actor: str, role: str,
               expected_sha256: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Store the file, record it and place it in the catalogue, in one save."""
        d = self.get(dossier)
        d._open()
        name = nfc(name, "file name", max_len=255)
        if "/" in name or "\\" in name or name.strip(" .") == "":
            raise InvalidDossierInputError("a file name has no path separators and is not '.' or '..'")
        if source not in SOURCES:
            raise InvalidDossierInputError(f"source is one of {SOURCES}")
        media_type = nfc(media_type, "media type", max_len=100)
        info = self.blobs.put(stream, expected_sha256)
        pdf = pdf_info(self.blobs.read(info.sha256)) if media_type == "application/pdf" else None
        pages = pdf.pages if pdf else None
        document_id = uuid.uuid4().hex
        d.upload(document_id=document_id, sha256=info.sha256, size=info.size, name=name, media_type=media_type,
                 source=source, doc_type=doc_type or "", pages=pages, actor=actor, role=role)  # fmt: skip
        spot = place(doc_type, name, pdf.text if pdf else "")
        d.catalogue_document(document_id=document_id, volume=spot.volume, category=spot.category, order=spot.order,
                             title=name.rsplit(".", 1)[0], pages=pages, auto=True, actor=actor, role=role)  # fmt: skip
        self._save(d)
        return {"document_id": document_id, "sha256": info.sha256, "size": info.size, "pages": pages,
                "category": spot.category, "placed_by": spot.reason, "version": d.version}  # fmt: skip

    def catalogue(self, dossier: UUID | str, **kw: Any) -> int:
        """A manual catalogue entry (override of the automatic one)."""
        d = self.get(dossier)
        d.catalogue_document(auto=False, **kw)
        self._save(d)
        return d.version

    def withdraw(self, dossier: UUID | str, **kw: Any) -> int:
        d = self.get(dossier)
        d.withdraw(**kw)
        self._save(d)
        return d.version

    def submit_evidence(self, dossier: UUID | str, *, sha256: str, size: int, name: str,
                        submitter: dict[str, Any], description: str, actor: str, role: str) -> int:  # fmt: skip
        d = self.get(dossier)
        d.submit_evidence(evidence_id=uuid.uuid4().hex, sha256=_sha(sha256, "sha256"), size=int(size),
                          name=nfc(name, "name", max_len=255), submitter=submitter,
                          description=nfc(description, "description", required=False),
                          actor=actor, role=role)  # fmt: skip
        self._save(d)
        return d.version

    def record_service(self, dossier: UUID | str, *, document_id: str, recipient: dict[str, Any], channel: str,
                       sent_at: str, delivered_at: str | None, read_at: str | None,
                       receipt_sha256: str | None, actor: str, role: str) -> int:  # fmt: skip
        d = self.get(dossier)
        d.record_service(document_id=document_id, recipient=recipient, channel=nfc(channel, "channel"),
                         sent_at=sent_at, delivered_at=delivered_at, read_at=read_at,
                         receipt_sha256=_sha(receipt_sha256, "receipt_sha256") if receipt_sha256 else None,
                         actor=actor, role=role)  # fmt: skip
        self._save(d)
        return d.version

    def register_contract(self, dossier: UUID | str, *, contract_sha256: str, parties: list[dict[str, Any]],
                          signed_at: str, actor: str, role: str) -> int:  # fmt: skip
        d = self.get(dossier)
        d.register_contract(contract_sha256=_sha(contract_sha256, "contract_sha256"),
                            parties=parties, signed_at=signed_at,
                            actor=actor, role=role)  # fmt: skip
        self._save(d)
        return d.version

    def transfer(self, dossier: UUID | str, *, to_court: str, kind: str, reason: str, actor: str, role: str) -> int:
        target = self.courts.get(to_court)  # a real court, or UnknownCourtError
        d = self.get(dossier)
        d.transfer(to_court=target.code, kind=kind, reason=reason, actor=actor, role=role)
        self._save(d)
        return d.version

    def archive(self, dossier: UUID | str, *, retention: str, package_sha256: str, actor: str, role: str) -> int:
        d = self.get(dossier)
        d.archive(retention=retention, package_sha256=_sha(package_sha256, "package_sha256"), actor=actor, role=role)
        self._save(d)
        return d.version

    def retrieve(self, dossier: UUID | str, *, by_court: str, by: str, reason: str, actor: str, role: str) -> Dossier:
        """Read a dossier's content; the read is itself an event (全程留痕)."""
        d = self.get(dossier)
        d.retrieved(by_court=by_court, by=nfc(by, "reader"), reason=nfc(reason, "reason"), actor=actor, role=role)
        self._save(d)
        return d
