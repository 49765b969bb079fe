"""Importing a dossier package from another court (上诉/移送/再审, 远程调阅).

The package is read once, as it streams: every event is proved against the lower court's
checkpoint before the first file arrives, and each file goes into the blob store checked
against its name (a file whose bytes differ is never stored). Only when the whole package
verified is anything recorded: a received dossier, in one save — its opening (same id, court,
case number, and the parties' salts, so its commitments equal the original's), a ``Received``
event naming the lower court's log, checkpoint and leaves, and one ``DocumentReceived`` per
document pointing at its original leaf. The original leaves and proofs are kept as blobs.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from dossier import fields
from dossier.application import SOURCES, DossierApp
from dossier.courts import CASE_TYPES, case_number
from dossier.domain import PERSONAL_FIELDS, TRANSFER_KINDS, VOLUMES, Dossier, document_fields, party
from dossier.errors import InvalidDossierInputError
from evidence.commitment import SALT_BYTES
from evidence.package import CHECKPOINT, EVENTS, UPLOADS, Package, PackageError, Progress, Readable, read_package
from ledger.cosignature import CosignatureVerifier
from ledger.note import Verifier
from storage.blobstore import BlobInfo, BlobStore
from storage.errors import DigestMismatchError

ACTOR_ROLE = "court"


class NotTransferredError(PackageError):
    code = "not_transferred"


@dataclass(frozen=True)
class Imported:
    dossier: UUID
    case_number: str
    from_court: str
    events: int
    files: int
    bytes: int
    version: int


class _Stores:
    """A sink that stores each payload file on a worker thread, up to ``depth`` at once: the
    package keeps streaming while earlier files are written and fsync'd. At most ``2 * depth``
    files are in flight (each holds up to eight chunks in memory): past that, the oldest is
    waited for. Every store's outcome is checked exactly once, in the order the files came,
    by taking it off the deque (``_check``); ``finish`` checks the rest. A file whose bytes did
    not hash to its name raises PackageError."""

    def __init__(self, blobs: BlobStore, depth: int = 4) -> None:
        self.blobs = blobs
        self.depth = depth
        self.pool = ThreadPoolExecutor(depth, thread_name_prefix="sifa-import")
        self.pending: deque[tuple[str, Future[BlobInfo]]] = deque()

    def __enter__(self) -> _Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        for _, f in self.pending:
            f.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __call__(self, sha: str, chunks: Iterator[bytes]) -> str:
        while len(self.pending) >= 2 * self.depth:  # bounded: memory, and files not yet judged
            self._check(*self.pending.popleft())
        channel = _Channel(8)
        stored = self.pool.submit(self._store, channel, sha)
        self.pending.append((sha, stored))
        try:
            for chunk in chunks:
                if not channel.put(chunk):  # the store gave up, or ended before the file did
                    self._check(sha, stored)
                    raise PackageError(f"payload file data/{sha} was stored before its end arrived",
                                       file=f"data/{sha}")  # fmt: skip
        finally:
            channel.end()  # the end of this file (short, if the stream broke: then it fails its hash)
        return sha  # its hash is checked by the store; _check says if it was not this

    def _store(self, channel: _Channel, sha: str) -> BlobInfo:
        try:
            return self.blobs.put(iter(channel), sha)
        finally:
            channel.close()  # a sender waiting for room is told at once

    def _check(self, sha: str, stored: Future[BlobInfo]) -> None:
        try:
            got = stored.result().sha256
        except DigestMismatchError:
            raise PackageError(f"payload file data/{sha} does not hash to its name; nothing of it was kept",
                               file=f"data/{sha}") from None  # fmt: skip
        if got != sha:
            raise PackageError(f"payload file data/{sha} hashes to {got}", file=f"data/{sha}")

    def finish(self) -> None:
        while self.pending:
            self._check(*self.pending.popleft())


class _Channel:
    """A bounded handoff of one file's chunks from the package reader to a store's thread. Either
    side waits on a condition, never in a polling loop: the reader for room, the store for chunks
    or the end; a store that stops closes it, and the reader's next ``put`` answers False."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._ended = self._closed = False

    def put(self, chunk: bytes) -> bool:
        """Hand on a chunk, waiting for room; False if the store has stopped taking them."""
        with self._cond:
            while len(self._items) >= self.size and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            self._items.append(chunk)
            self._cond.notify_all()
            return True

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                while not self._items and not self._ended:
                    self._cond.wait()
                if not self._items:
                    return
                chunk = self._items.popleft()
                self._cond.notify_all()
            yield chunk


def _live_documents(package: Package) -> list[tuple[dict[str, Any], dict[str, Any] | None, int]]:
    """(document, catalogue entry, original leaf) of every document not withdrawn, in upload order."""
    docs: dict[str, tuple[dict[str, Any], int]] = {}
    catalogue: dict[str, dict[str, Any]] = {}
    for e in package.events:
        body, kind = e.doc["body"], e.doc["type"]
        if kind in UPLOADS:
            docs[body["document_id"]] = (body, e.leaf_index)
            if kind == "DocumentReceived" and body.get("catalogue"):
                catalogue[body["document_id"]] = body["catalogue"]
        elif kind == "Catalogued":
            catalogue[body["document_id"]] = {k: body[k] for k in ("volume", "category", "order", "title", "pages",
                                                                     "auto")}  # fmt: skip
        elif kind == "DocumentWithdrawn":
            docs.pop(body["document_id"], None)
            catalogue.pop(body["document_id"], None)
    return [(body, catalogue.get(doc_id), leaf) for doc_id, (body, leaf) in docs.items()]


CATALOGUE_KEYS = frozenset({"volume", "category", "order", "title", "pages", "auto"})


def _same(value: Any, checked: Any, what: str) -> None:
    """A value from another court's leaf is recorded as it is, or not at all: it must already be
    in the form this node's own rules give it (NFC, bounded, clean)."""
    if type(value) is not type(checked) or value != checked:
        raise InvalidDossierInputError(f"{what} is not in the form this node records")


def _imported_party(record: Any) -> dict[str, Any]:
    """A party from the package's disclosures, by ``party``'s rules, with its original salts (a
    ``sifa-leaf/1`` record) or new ones (a ``sifa-leaf/2`` opening discloses no salts of this kind)."""
    if not isinstance(record, dict):
        raise InvalidDossierInputError("a party is an object")
    salts = record.get("salts")
    checked = party({k: v for k, v in record.items() if k != "salts"})
    if "salts" not in record:
        for key in ("role", "kind", *PERSONAL_FIELDS):
            _same(record.get(key), checked.get(key), f"party {key}")
        return checked
    for key in ("role", "kind", *PERSONAL_FIELDS):
        _same(record.get(key, "natural" if key == "kind" else None), checked.get(key), f"party {key}")
    if not isinstance(salts, dict) or set(salts) != set(checked["salts"]):
        raise InvalidDossierInputError("a party's salts are one per personal value")
    for value in salts.values():
        if not isinstance(value, str) or len(value) != 2 * SALT_BYTES or not fields.is_hex(value):
            raise InvalidDossierInputError(f"a party's salt is {SALT_BYTES} bytes in hex")
    return {**checked, "salts": dict(salts)}


def _check_document(body: dict[str, Any], entry: dict[str, Any] | None) -> None:
    """A document and its catalogue entry from another court's leaves, by the rules of an upload here."""
    fields.text(body.get("document_id"), "document id")
    sha = body.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or not fields.is_hex(sha):
        raise InvalidDossierInputError("a document's sha256 is 64 lowercase hex digits")
    fields.count(body.get("size"), "size", most=fields.MAX_SIZE)
    doc = document_fields(body.get("name"), body.get("media_type"), body.get("doc_type"))
    for key in ("name", "media_type", "doc_type"):
        _same(body.get(key), doc[key], f"document {key}")
    fields.choice(body.get("source"), "source", SOURCES)
    fields.optional_count(body.get("pages"), "pages", most=fields.MAX_PAGES)
    if entry is None:
        return
    if not isinstance(entry, dict) or set(entry) != CATALOGUE_KEYS:
        raise InvalidDossierInputError(f"a catalogue entry holds exactly {', '.join(sorted(CATALOGUE_KEYS))}")
    fields.choice(entry["volume"], "volume", VOLUMES)
    for key, what in (("category", "category"), ("title", "title")):
        _same(entry[key], fields.text(entry[key], what), what)
    fields.count(entry["order"], "order", most=fields.MAX_ORDER)
    fields.optional_count(entry["pages"], "pages", most=fields.MAX_PAGES)
    fields.flag(entry["auto"], "auto")


def import_package(app: DossierApp, stream: Readable, *, logs: Sequence[Verifier],
                   witnesses: Sequence[CosignatureVerifier] = (), quorum: int = 0, actor: str,
                   progress: Progress | None = None) -> Imported:  # fmt: skip
    """Verify a package from another court as it streams and record it as a received dossier.

    Raises PackageError (nothing recorded; no file that failed its hash is stored),
    NotTransferredError when no transfer in it names this court, DossierExistsError when
    this node already holds the dossier.
    """

    with _Stores(app.blobs) as sink:
        package = read_package(stream, logs, witnesses=witnesses, quorum=quorum, sink=sink, progress=progress)
        sink.finish()
    transfers = [
        e for e in package.events if e.doc["type"] == "Transferred" and e.doc["body"].get("to_court") == app.court
    ]
    if not transfers:
        raise NotTransferredError(f"no transfer in this package names court {app.court}; it is not imported")
    opened = package.events[0].doc["body"]
    try:  # every value recorded here by the rules of this node's own commands
        court = fields.text(opened.get("court"), "court")
        number = case_number(fields.text(opened.get("case_number"), "case number"))
        _same(opened.get("case_number"), number, "case number")
        case_type = fields.choice(opened.get("case_type"), "case type", CASE_TYPES)
        if package.events[0].view is not None:  # sifa-leaf/2: the opening's disclosed parties
            records = opened.get("parties", [])
        else:
            records = package.disclosures.get("1", {}).get("parties", [])
        if not isinstance(records, list) or len(records) > fields.MAX_PARTIES:
            raise InvalidDossierInputError(f"parties is a list of at most {fields.MAX_PARTIES}")
        parties = [_imported_party(p) for p in records]
        kind = fields.choice(transfers[-1].doc["body"].get("kind"), "a transfer", TRANSFER_KINDS)
        documents = _live_documents(package)
        for body, entry, _ in documents:
            _check_document(body, entry)
    except InvalidDossierInputError as exc:
        raise PackageError(f"the package holds a value this node does not record: {exc.diagnostics()}") from None
    except (KeyError, TypeError) as exc:  # a leaf without a field its event always has
        raise PackageError(f"the package holds an event without its fields: {exc!r}"[:300]) from None
    d = Dossier(court=court, case_number=number, case_type=case_type, parties=parties, actor=actor,
                role=ACTOR_ROLE)  # fmt: skip
    if str(d.id) != package.dossier:
        raise PackageError(f"the package's dossier id {package.dossier} is not that of case {opened['case_number']}")
    kept = {}
    for name in (EVENTS, CHECKPOINT):
        data = package.tags[name]
        kept[name] = app.blobs.put(iter([data]), hashlib.sha256(data).hexdigest()).sha256
    last = package.events[-1]
    sender = package.origin.rsplit("/", 1)[-1]  # the court whose log sent it (sifa.court/<code>)
    d.receive(by_court=app.court, from_court=sender, from_origin=package.origin, kind=kind,
              dossier_version=last.version, checkpoint_size=package.checkpoint.size,
              checkpoint_root=package.checkpoint.root_hash.hex(), first_leaf=package.events[0].leaf_index,
              last_leaf=last.leaf_index, last_leaf_hash=package.leaf_hash(last).hex(),
              events_sha256=kept[EVENTS], checkpoint_sha256=kept[CHECKPOINT], files=len(package.files),
              total_bytes=sum(package.files.values()), actor=actor, role=ACTOR_ROLE)  # fmt: skip
    for body, entry, leaf in documents:
        d.document_received(document_id=body["document_id"], sha256=body["sha256"], size=body["size"],
                            name=body["name"], media_type=body["media_type"], source=body["source"],
                            doc_type=body["doc_type"], pages=body["pages"], catalogue=entry, original_leaf=leaf,
                            actor=actor, role=ACTOR_ROLE)  # fmt: skip
    app.import_dossier(d)
    return Imported(d.id, d.case_number, sender, len(package.events), len(package.files),
                    sum(package.files.values()), d.version)  # fmt: skip
