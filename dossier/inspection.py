"""The four-property check (四性检测) a dossier passes before it is archived.

- 真实性 authenticity: every event is sealed and its receipt verifies against the log's key;
  every file still hashes to its name.
- 完整性 completeness: every document is in the catalogue, and a PDF's catalogued page count is
  its own; a document without a page count is counted as one page (dossier/directory.py), so
  the 卷内目录's page numbers run without gaps, and the report lists those documents.
- 可用性 usability: every file opens as its declared format (PDF parses, images decode, text
  is UTF-8, OFD is a zip with OFD.xml); formats the archive does not keep are findings.
- 安全性 security: no file is encrypted or carries active content (PDF JavaScript, launch
  actions, embedded files, XFA; scripts in HTML/XML/SVG).

The report is JSON, part of the archive package (``sifa/inspection.json``); a failing report
blocks archiving and is returned to the archivist as the error's detail.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from dossier.sealed import sealed
from ledger.errors import LedgerError
from ledger.note import Verifier
from ledger.receipt import verify_receipt
from storage.blobstore import BlobStore
from storage.errors import StorageError

if TYPE_CHECKING:
    from dossier.sealer import Sealer

FORMAT = "sifa-inspection/1"
PROPERTIES = ("真实性", "完整性", "可用性", "安全性")
IMAGES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF", "image/gif": "GIF", "image/bmp": "BMP"}
TEXTS = ("text/plain", "text/csv", "application/xml", "text/xml", "application/json")
MAGIC = {"audio/mpeg": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"), "audio/wav": (b"RIFF",),
         "video/mp4": (), "application/ofd": (b"PK\x03\x04",)}  # fmt: skip
KEPT_FORMATS = ("application/pdf", *IMAGES, *TEXTS, *MAGIC)
# PDF names that start or carry content the archive cannot keep (ISO 32000 actions and attachments).
PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA|SubmitForm|ImportData)\b")
SCRIPT = re.compile(rb"<\s*script\b|\bjavascript\s*:", re.IGNORECASE)
SPOOL = 8 << 20
KEPT_IN_MEMORY = 64 << 20  # bytes of inspected files an archiving keeps in memory, all together


@dataclass(frozen=True, slots=True)
class Finding:
    item: str
    problem: str


@dataclass(frozen=True, slots=True)
class PropertyResult:
    """One property's checks (what was checked, for the record) and findings (what failed)."""

    checks: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass(frozen=True, slots=True)
class InspectionReport:
    """The four-property check's report; ``to_json`` is the ``sifa/inspection.json`` document."""

    dossier: str
    case_number: str
    version: int
    at: str
    properties: dict[str, PropertyResult]

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.properties.values())

    @property
    def failed(self) -> list[str]:
        """The properties that did not pass, in the standard's order."""
        return [name for name, p in self.properties.items() if not p.passed]

    def to_json(self) -> dict[str, Any]:
        properties = {name: {"passed": p.passed, "checks": list(p.checks),
                             "findings": [{"item": f.item, "problem": f.problem} for f in p.findings]}
                      for name, p in self.properties.items()}  # fmt: skip
        return {"format": FORMAT, "dossier": self.dossier, "case_number": self.case_number, "version": self.version,
                "at": self.at, "passed": self.passed, "properties": properties}  # fmt: skip


class Copies:
    """The files an inspection read and verified, kept (spooled; past KEPT_IN_MEMORY bytes in all, on
    disk) so the archive package is written from them: archiving reads each file from the blob
    store once (on S3, one download), not once to check and again to package. ``read`` has the
    blob store's signature for the package writer; a file not kept is read from the store."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._kept: dict[str, tuple[IO[bytes], int]] = {}
        self._in_memory = 0

    def __enter__(self) -> Copies:
        return self

    def __exit__(self, *exc: object) -> None:
        for spool, _ in self._kept.values():
            spool.close()
        self._kept.clear()

    def keep(self, sha: str, spool: tempfile.SpooledTemporaryFile[bytes], size: int) -> None:
        if self._in_memory + size > KEPT_IN_MEMORY:
            spool.rollover()  # to disk: many small files must not add up in memory
        else:
            self._in_memory += size
        self._kept[sha] = (spool, size)

    def read(self, sha256: str, *, size: int | None = None) -> Iterator[bytes]:
        kept = self._kept.get(sha256)
        if kept is None or (size is not None and size != kept[1]):
            yield from self.blobs.read(sha256, size=size)
            return
        spool = kept[0]
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk


class _Report:
    def __init__(self) -> None:
        self.checks: dict[str, list[str]] = {p: [] for p in PROPERTIES}
        self.findings: dict[str, list[Finding]] = {p: [] for p in PROPERTIES}

    def check(self, prop: str, what: str) -> None:
        self.checks[prop].append(what)

    def find(self, prop: str, item: str, problem: str) -> None:
        self.findings[prop].append(Finding(item, problem))


def inspect(sealer: Sealer, dossier: str, log_key: Verifier, *, keep: Copies | None = None) -> InspectionReport:
    """Run the four-property check on a dossier as it stands; return the report (``passed``).
    Its events must be sealed (raises NotSealedError; dossier/sealed.py waits for that). ``keep``:
    where the files read and verified are kept, to package them without reading again."""
    app, blobs = sealer.app, sealer.app.blobs
    d = app.get(dossier)
    r = _Report()
    # 真实性: every event in the log, proved against a signed checkpoint.
    sealed(sealer, d.id, d.version)
    for v in range(1, d.version + 1):
        try:
            receipt = sealer.receipt_for_event(str(d.id), v)
            verify_receipt(receipt, [log_key])
        except LedgerError as exc:
            r.find("真实性", f"event {v}", exc.diagnostics())
    r.check("真实性", f"{d.version} events, each with a verified receipt in {log_key.name}")
    live = {k: v for k, v in d.documents.items() if not v.get("withdrawn")}
    # 完整性: the catalogue holds every document; one without a page count is counted as one page.
    unpaged: list[str] = []
    for doc_id, doc in live.items():
        entry = d.catalogue.get(doc_id)
        if entry is None:
            r.find("完整性", doc["name"], "not in the catalogue (卷内目录)")
            continue
        pages = entry.get("pages")
        if not isinstance(pages, int) or pages < 1:
            unpaged.append(doc["name"])  # counted as one page (dossier/directory.py): no gap, said here
        elif doc.get("pages") is not None and pages != doc["pages"]:
            r.find("完整性", doc["name"], f"catalogued as {pages} pages; the PDF has {doc['pages']}")
    r.check("完整性", f"{len(live)} documents, each catalogued; pages numbered without gaps")
    if unpaged:
        r.check("完整性", f"{len(unpaged)} without a page count, each counted as one page (页数未知，按1页计): "
                + "、".join(unpaged[:20]) + ("…" if len(unpaged) > 20 else ""))  # fmt: skip
    # 真实性 (files), 可用性 and 安全性, reading each file once.
    seen: set[str] = set()
    for doc in live.values():
        if doc["sha256"] in seen:
            continue
        seen.add(doc["sha256"])
        _inspect_file(blobs, doc, r, keep)
    r.check("真实性", f"{len(seen)} files re-read, each hashes to its recorded SHA-256")
    r.check("可用性", f"{len(seen)} files open as their declared formats")
    r.check("安全性", f"{len(seen)} files: none encrypted, none with active content")
    properties = {p: PropertyResult(tuple(r.checks[p]), tuple(r.findings[p])) for p in PROPERTIES}
    return InspectionReport(str(d.id), d.case_number, d.version,
                            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                            properties)  # fmt: skip


def _inspect_file(blobs: BlobStore, doc: dict[str, Any], r: _Report, keep: Copies | None) -> None:
    name, sha, media = doc["name"], doc["sha256"], doc["media_type"]
    with contextlib.ExitStack() as closing:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (closed below, or by keep)
        closing.callback(spool.close)
        h = hashlib.sha256()
        size = 0
        try:
            for chunk in blobs.read(sha):
                h.update(chunk)
                spool.write(chunk)
                size += len(chunk)
        except StorageError as exc:
            r.find("真实性", name, exc.diagnostics())
            return
        if h.hexdigest() != sha:
            r.find("真实性", name, f"the stored file hashes to {h.hexdigest()}, not to its recorded {sha}")
            return
        if keep is not None:  # verified: the package may be written from it
            closing.pop_all()
            keep.keep(sha, spool, size)
        spool.seek(0)
        check = _FORMATS.get(media) or (_image if media in IMAGES else _text if media in TEXTS else None)
        if check is None:
            r.find("可用性", name, f"format {media} is not one the archive keeps ({', '.join(KEPT_FORMATS)})")
            return
        check(spool, media, name, r)


def _pdf(f: IO[bytes], media: str, name: str, r: _Report) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError
    from pypdf.generic import DictionaryObject

    try:
        reader = PdfReader(f)
        if reader.is_encrypted:
            r.find("安全性", name, "the PDF is encrypted; the archive cannot keep what it cannot open")
            return
        root = reader.trailer["/Root"].get_object()
        if not isinstance(root, DictionaryObject):
            raise TypeError("the PDF has no document catalogue")
        len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        r.find("可用性", name, f"does not open as a PDF: {exc}"[:300])
        return
    names = root.get("/Names")
    active = []
    names = names.get_object() if names is not None else None
    if isinstance(names, DictionaryObject) and any(k in names for k in ("/JavaScript", "/EmbeddedFiles")):
        active.append("document-level scripts or attachments")
    if "/OpenAction" in root or "/AA" in root:
        active.append("an action run on opening")
    f.seek(0)
    tail = b""
    while chunk := f.read(1 << 20):
        found = PDF_ACTIVE.search(tail + chunk)
        if found:
            active.append(f"/{found.group(1).decode()}")
            break
        tail = chunk[-32:]
    if active:
        r.find("安全性", name, "active content: " + ", ".join(active))


def _image(f: IO[bytes], media: str, name: str, r: _Report) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as img:
            kind = img.format
            img.load()  # decode every pixel: a truncated image fails here
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        r.find("可用性", name, f"does not decode as {media}: {exc}"[:300])
        return
    if kind != IMAGES[media]:
        r.find("可用性", name, f"declared {media}, but the bytes are {kind}")


def _text(f: IO[bytes], media: str, name: str, r: _Report) -> None:
    tail = b""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := f.read(1 << 20):
            decoder.decode(chunk)
            if media in ("application/xml", "text/xml") and SCRIPT.search(tail + chunk):
                r.find("安全性", name, "holds a script")
                return
            tail = chunk[-32:]
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        r.find("可用性", name, f"declared {media}, but it is not UTF-8 text")


def _magic(f: IO[bytes], media: str, name: str, r: _Report) -> None:
    head = f.read(16)
    ok = head[4:8] == b"ftyp" if media == "video/mp4" else head.startswith(MAGIC[media])
    if not ok:
        r.find("可用性", name, f"the bytes do not begin as {media} does")
        return
    if media == "application/ofd":
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as z:
                if "OFD.xml" not in z.namelist():
                    r.find("可用性", name, "an OFD package without OFD.xml")
        except (zipfile.BadZipFile, OSError) as exc:
            r.find("可用性", name, f"does not open as OFD: {exc}")


_FORMATS: dict[str, Callable[[IO[bytes], str, str, _Report], None]] = {
    "application/pdf": _pdf,
    **{m: _magic for m in MAGIC},
}
