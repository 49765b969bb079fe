"""The dossier package (``sifa-package/1``): a BagIt (RFC 8493) bag, serialised as a tar stream.

Layout, in stream order (docs/package.md)::

    bagit.txt                 BagIt-Version 1.0, UTF-8 tag files
    bag-info.txt              court, case number, Payload-Oxum, Sifa-* fields
    manifest-sha256.txt       every payload file: "<sha256> data/<sha256>"
    tagmanifest-sha256.txt    every tag file below and the three above
    sifa/checkpoint.txt       the cosigned checkpoint every event is proved against
    sifa/events.jsonl         one line per event: version, leaf index, leaf (RFC 8785 text), inclusion proof;
                              or, for an event this copy withholds (a lawyer's or party's copy leaves
                              out the court-only 副卷), version, leaf index, leaf hash and proof only
    sifa/disclosures.json     by event version: for a sifa-leaf/2 event, the disclosures ({path, value, salt})
                              its holder may be shown; for a sifa-leaf/1 event, its party records and salts
    sifa/catalogue.html       the 卷内目录, readable
    [sifa/inspection.json]    the 四性检测 report (archive packages)
    data/<sha256> ...         the files, named by their SHA-256

Tag files come first, so a reader checks every event against the log before the first
payload byte arrives; payload files are then checked as they stream, each by its name.
This module is pure (bytes in, verdicts out): the verifier and the importing node share it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from evidence.commitment import PERSONAL_RECORDS, DisclosureError, verify_disclosure
from evidence.disclosure import FORMAT as LEAF_FORMAT
from evidence.disclosure import LeafView, MalformedLeafError, read_leaf, unflatten, verify_disclosures
from evidence.leaf import FILE_FIELDS
from evidence.tarstream import BLOCK, Member, tar_members
from evidence.tarstream import MalformedPackageError as MalformedPackageError  # re-exported
from evidence.tarstream import Readable as Readable  # re-exported
from ledger import boundedjson
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.cosignature import CosignatureVerifier, require_quorum
from ledger.errors import MalformedError, VerificationError
from ledger.hashing import SHA256, Hasher
from ledger.note import Note, Verifier
from ledger.proof import verify_inclusion
from ledger.suite import hasher_for_log, suite_of_hasher

FORMAT = "sifa-package/1"
BAGIT = "bagit.txt"
INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
CHECKPOINT = "sifa/checkpoint.txt"
EVENTS = "sifa/events.jsonl"
DISCLOSURES = "sifa/disclosures.json"
CATALOGUE = "sifa/catalogue.html"
INSPECTION = "sifa/inspection.json"
HEAD = (BAGIT, INFO, MANIFEST, TAGMANIFEST)
REQUIRED_TAGS = (CHECKPOINT, EVENTS, DISCLOSURES, CATALOGUE)
BAGIT_TEXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
UPLOADS = ("DocumentUploaded", "DocumentReceived")  # events whose file is in the payload
_SHA = re.compile(r"[0-9a-f]{64}")
MAX_TAG_BYTES = 256 << 20  # tag files are read whole; a dossier's events fit many times over
MAX_PACKAGE_BYTES = 1 << 40  # what a stream of unknown length may hold


class PackageError(VerificationError):
    """A package that does not verify; ``what`` names the part (a file, an event, the checkpoint)."""

    code = "package_invalid"


# --- writing: the tar framing (the node's dossier/package.py assembles the contents) ---


def tar_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o444, tarfile.REGTYPE
    info.uname = info.gname = "sifa"
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8")


def tar_padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


TAR_END = b"\0" * (2 * BLOCK)


def member_bytes(name: str, size: int, mtime: int) -> int:
    """How many tar bytes a member of ``size`` takes (for Content-Length)."""
    return len(tar_header(name, size, mtime)) + size + (-size % BLOCK)


def manifest_text(entries: Iterable[tuple[str, str]]) -> bytes:
    """BagIt manifest lines ``<sha256> <path>``."""
    return "".join(f"{sha} {path}\n" for sha, path in entries).encode("utf-8")


def info_text(fields: Sequence[tuple[str, str]]) -> bytes:
    for key, value in fields:
        if "\n" in value or "\r" in value or ":" in key:
            raise MalformedPackageError(f"bag-info field {key!r} cannot hold a line break")
    return "".join(f"{k}: {v}\n" for k, v in fields).encode("utf-8")


def event_line(version: int, leaf_index: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    doc = {"version": version, "leaf_index": leaf_index, "leaf": leaf.decode("utf-8"),
           "proof": [base64.b64encode(h).decode() for h in proof]}  # fmt: skip
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def withheld_line(version: int, leaf_index: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """An event a copy withholds: its place in the chain and the log, never its content."""
    doc = {"version": version, "leaf_index": leaf_index, "leaf_hash": leaf_hash.hex(),
           "proof": [base64.b64encode(h).decode() for h in proof]}  # fmt: skip
    return json.dumps(doc, separators=(",", ":")).encode("utf-8") + b"\n"


# --- reading and checking ---


@dataclass(frozen=True)
class PackageEvent:
    """A proved event. ``doc`` is its leaf as a ``sifa-leaf/1`` envelope reads: for a ``sifa-leaf/2``
    leaf, its clear fields and a ``body`` of the files it names and the fields the package discloses
    (verified against their commitments); ``view`` is then the leaf as read."""

    version: int
    leaf_index: int
    leaf: bytes
    doc: dict[str, Any]
    view: LeafView | None = None


@dataclass
class Package:
    """A package that verified: what it holds, as checked."""

    info: dict[str, str]
    checkpoint: Checkpoint
    events: list[PackageEvent]
    files: dict[str, int]  # sha256 -> size, every file in the package
    disclosures: dict[str, dict[str, Any]]
    tags: dict[str, bytes] = field(repr=False)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (check, detail), all passed
    withheld: list[int] = field(default_factory=list)  # versions of the events this copy withholds (proved only)
    hasher: Hasher = SHA256  # the tree hash of the package's log, as its trusted key names it (ledger.suite)

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def dossier(self) -> str:
        return self.info["Sifa-Dossier"]

    def leaf_hash(self, event: PackageEvent) -> bytes:
        return self.hasher.leaf(event.leaf)


@dataclass
class PackageSeen:
    """What reading a package verified before it stopped, for a report of a failure: the checkpoint
    once its signature verified, the package once every tag-file check passed (events proved,
    files named), how many payload files hashed to their names, and whether that was all of them."""

    checks: list[tuple[str, str]] = field(default_factory=list)  # (check, detail), each passed
    checkpoint: Checkpoint | None = None
    package: Package | None = None
    files: int = 0
    whole: bool = False


# sink(sha256, chunks) consumes a payload file and returns the SHA-256 of what it consumed; a sink
# that checks the hash itself (a blob store) may return the name and raise PackageError instead.
Sink = Callable[[str, Iterator[bytes]], str]
Progress = Callable[[int, int], None]  # bytes done, bytes in all


def hash_sink(_: str, chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _fail(message: str, **detail: object) -> PackageError:
    return PackageError(message, **detail)


def _lines(data: bytes, what: str) -> list[str]:
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise _fail(f"{what} is not UTF-8") from None


def parse_manifest(data: bytes, what: str) -> dict[str, str]:
    """path -> sha256 of a BagIt manifest."""
    out: dict[str, str] = {}
    for line in _lines(data, what):
        if not line.strip():
            continue
        sha, _, path = line.partition(" ")
        path = path.strip()
        if not _SHA.fullmatch(sha) or not path or path in out:
            raise _fail(f"{what}: line {line[:80]!r} is not '<sha256> <path>' or repeats a path")
        out[path] = sha
    return out


def parse_info(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _lines(data, INFO):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise _fail(f"{INFO}: line {line[:80]!r} is not 'Label: value'")
        out.setdefault(key.strip(), value.strip())
    return out


class _Reader:
    def __init__(self, logs: Sequence[Verifier], witnesses: Sequence[CosignatureVerifier], quorum: int,
                 sink: Sink, progress: Progress | None, seen: PackageSeen, withheld: bool = False) -> None:  # fmt: skip
        self.logs, self.witnesses, self.quorum = logs, witnesses, quorum
        self.allow_withheld = withheld
        self.sink, self.progress, self.report = sink, progress, seen
        self.tags: dict[str, bytes] = {}
        self.package: Package | None = None
        self.payload: dict[str, str] = {}  # path -> sha
        self.seen: set[str] = set()
        self.done = 0
        self.total = 0
        self.tag_bytes = 0
        self.hasher: Hasher = SHA256

    def read(self, stream: Readable, limit: int) -> Package:
        position = 0
        try:
            for member in tar_members(stream, limit):
                self._member(member, position)
                position += 1
        except (EOFError, OSError) as exc:
            what = "is not a tar stream" if position == 0 else "stream is cut or damaged"
            raise _fail(f"the package {what}: {exc}") from None
        if position < len(HEAD):
            raise _fail(f"the package ends before its {HEAD[position]}")
        if self.package is None:
            self._check_tags()
        assert self.package is not None
        missing = sorted(set(self.payload) - self.seen)
        if missing:
            raise _fail(f"{len(missing)} file(s) of the manifest are missing, first {missing[0]}", missing=missing[:20])
        self.report.whole = True
        return self.package

    def _member(self, m: Member, position: int) -> None:
        name = m.name
        if position < len(HEAD) and name != HEAD[position]:
            raise _fail(f"package member {position + 1} is {name!r}, expected {HEAD[position]}")
        if name.startswith("data/"):
            if self.package is None:
                self._check_tags()
            self._payload(m)
            return
        if self.package is not None:
            raise _fail(f"tag file {name!r} comes after the payload began")
        if name in self.tags:
            raise _fail(f"package member {name!r} appears twice")
        self.tag_bytes += m.size
        if self.tag_bytes > MAX_TAG_BYTES:  # held in memory until checked: bounded, all together
            raise _fail(f"tag file {name!r} makes the tag files larger than {MAX_TAG_BYTES} bytes")
        self.tags[name] = b"".join(m.chunks())

    def _payload(self, m: Member) -> None:
        name, size = m.name, m.size
        expected = self.payload.get(name)
        if expected is None:
            raise _fail(f"payload file {name!r} is not in the manifest", file=name)
        if name in self.seen:
            raise _fail(f"payload file {name!r} appears twice", file=name)
        self.seen.add(name)
        assert self.package is not None
        if size != self.package.files[expected]:
            raise _fail(f"payload file {name} has {size} bytes; its event says {self.package.files[expected]}",
                        file=name)  # fmt: skip

        def counted() -> Iterator[bytes]:
            for chunk in m.chunks():
                self.done += len(chunk)
                if self.progress is not None:
                    self.progress(self.done, self.total)
                yield chunk

        got = self.sink(expected, counted())
        if got != expected:
            raise _fail(f"payload file {name} hashes to {got}, not to its name", file=name)
        self.report.files += 1

    # --- the checks that need only the tag files ---
    def _check_tags(self) -> None:
        tags = self.tags
        checks = self.report.checks
        if tags.get(BAGIT, b"").replace(b"\r\n", b"\n") != BAGIT_TEXT:
            raise _fail("bagit.txt is not a BagIt 1.0 declaration with UTF-8 tag files")
        listed = parse_manifest(tags[TAGMANIFEST], TAGMANIFEST)
        for name, data in tags.items():
            if name == TAGMANIFEST:
                continue
            if name not in listed:
                raise _fail(f"tag file {name!r} is not in the tag manifest", file=name)
            if hashlib.sha256(data).hexdigest() != listed[name]:
                raise _fail(f"tag file {name} does not match the tag manifest", file=name)
        for name in [*HEAD[:3], *REQUIRED_TAGS]:
            if name not in tags:
                raise _fail(f"the package has no {name}")
        for name in listed:
            if name not in tags:
                raise _fail(f"tag file {name} of the tag manifest is missing", file=name)
        checks.append(("bag", "BagIt 1.0; every tag file matches the tag manifest"))
        info = parse_info(tags[INFO])
        if info.get("Sifa-Format") != FORMAT:
            raise _fail(f"unknown package format {info.get('Sifa-Format')!r}; this reader knows {FORMAT}")
        payload = parse_manifest(tags[MANIFEST], MANIFEST)
        for path, sha in payload.items():
            if path != f"data/{sha}":
                raise _fail(f"payload path {path!r} is not data/<its sha256>", file=path)
        self.payload = payload
        # The checkpoint: signed by a trusted log key, cosigned by the quorum asked for.
        text = tags[CHECKPOINT].decode("utf-8", "replace")
        try:
            checkpoint, _note = open_checkpoint(text, self.logs)
        except VerificationError as exc:
            raise _fail(f"the package's checkpoint does not verify: {exc.diagnostics()}", check="checkpoint") from None
        except MalformedError as exc:
            raise _fail(f"the package's checkpoint is unreadable: {exc.diagnostics()}", check="checkpoint") from None
        try:
            self.hasher = hasher_for_log(checkpoint.origin, self.logs)
        except MalformedError as exc:
            raise _fail(f"the package's log: {exc.diagnostics()}", check="checkpoint") from None
        checks.append(("checkpoint", f"{checkpoint.origin} size {checkpoint.size}, signed by a trusted log key"
                                     f" ({suite_of_hasher(self.hasher).name})"))  # fmt: skip
        self.report.checkpoint = checkpoint
        if self.quorum:
            try:
                named = require_quorum(Note.from_text(text), self.witnesses, self.quorum)
            except VerificationError as exc:
                raise _fail(exc.diagnostics(), check="witnesses") from None
            checks.append(("witnesses", f"cosigned by {len(named)} of the trusted witnesses"))
        if info.get("Sifa-Origin") != checkpoint.origin:
            raise _fail(f"bag-info names log {info.get('Sifa-Origin')!r}; the checkpoint is of {checkpoint.origin!r}")
        events, withheld = self._events(tags[EVENTS], checkpoint, info)
        checks.append(("events", f"{len(events) + len(withheld)} events, versions 1..{len(events) + len(withheld)}, "
                                 "each proved in the log, chained by prev"))  # fmt: skip
        if withheld:
            checks.append(("withheld", f"{len(withheld)} event(s) withheld from this copy (the court-only 副卷): "
                                       "each proved in the log and in the chain, its content not shown"))  # fmt: skip
        files: dict[str, int] = {}
        for e in events:
            if e.doc["type"] in UPLOADS:
                body = e.doc["body"]
                sha, size = body.get("sha256"), body.get("size")
                if not isinstance(sha, str) or not _SHA.fullmatch(sha) or type(size) is not int or size < 0:
                    raise _fail(f"event {e.version} names no file by sha256 and size", event=e.version)
                files[sha] = size
        if set(payload.values()) != set(files):
            extra = sorted(set(payload.values()) - set(files))
            absent = sorted(set(files) - set(payload.values()))
            raise _fail(f"the manifest and the events disagree: {len(absent)} file(s) without a manifest entry, "
                        f"{len(extra)} manifest entr(ies) no event names",
                        missing=absent[:20], extra=extra[:20])  # fmt: skip
        oxum = f"{sum(files.values())}.{len(files)}"
        if info.get("Payload-Oxum") != oxum:
            raise _fail(f"Payload-Oxum {info.get('Payload-Oxum')!r} is not {oxum}")
        checks.append(("files", f"{len(files)} files, {sum(files.values())} bytes, each named by an event"))
        disclosures = self._disclosures(tags[DISCLOSURES], events)
        if disclosures:
            checks.append(("disclosures", f"personal data of {len(disclosures)} event(s) opens their commitments"))
        self.total = sum(files.values())
        self.package = Package(info, checkpoint, events, files, disclosures, dict(tags), list(checks), withheld,
                               self.hasher)  # fmt: skip
        self.report.package = self.package

    def _events(self, data: bytes, checkpoint: Checkpoint,
                info: dict[str, str]) -> tuple[list[PackageEvent], list[int]]:  # fmt: skip
        """The shown events, and the versions of the withheld ones: each proved in the log by its leaf
        hash, and chained (the next event's ``prev`` is that hash; a withheld last event is proved only)."""
        out: list[PackageEvent] = []
        withheld: list[int] = []
        prev: bytes | None = None
        last = -1
        dossier = info.get("Sifa-Dossier")
        ref: str | None = None  # a sifa-leaf/2 leaf's dossier reference: the same in every event
        for n, line in enumerate(_lines(data, EVENTS), start=1):
            view: LeafView | None = None
            try:
                raw = boundedjson.loads(line)
                if not isinstance(raw, dict):
                    raise TypeError("an event line is an object")
                version, index = raw["version"], raw["leaf_index"]
                proof = [base64.b64decode(h, validate=True) for h in raw["proof"]]
                if type(version) is not int or type(index) is not int:
                    raise TypeError("version and leaf_index are integers")
                leaf: bytes | None = None
                if "leaf" in raw:
                    leaf = shown = raw["leaf"].encode("utf-8")
                    doc = boundedjson.loads(shown)
                    if not isinstance(doc, dict):
                        raise TypeError("the leaf is an object")
                    if "format" in doc:
                        view = read_leaf(shown)
                        doc = _v2_doc(view)
                    leaf_hash = self.hasher.leaf(shown)
                else:
                    doc = {}
                    if not isinstance(raw["leaf_hash"], str) or not _SHA.fullmatch(raw["leaf_hash"]):
                        raise TypeError("a withheld event's leaf_hash is 64 lowercase hex digits")
                    leaf_hash = bytes.fromhex(raw["leaf_hash"])
            except MalformedLeafError as exc:
                raise _fail(f"events line {n}: {exc.diagnostics()}", event=n) from None
            except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
                raise _fail(f"events line {n} is not an event with its proof: {exc}", event=n) from None
            if version != n:
                raise _fail(f"event version {n} is missing (line {n} holds version {version})", event=n)
            if leaf is None:
                if not self.allow_withheld:
                    raise _fail(f"the package withholds event {n} (a lawyer's or party's copy); only a whole "
                                "package is imported", event=n)  # fmt: skip
                if n == 1:
                    raise _fail("the first event (the dossier's opening) is never withheld", event=n)
            elif (doc.get("origin"), doc.get("dossier") if view is None else (ref := ref or view.dossier),
                  doc.get("version"), doc.get("seq")) != (checkpoint.origin, dossier if view is None else view.dossier,
                                                          version, index):  # fmt: skip
                raise _fail(f"event {n}'s leaf is not leaf {index} of dossier {dossier} in {checkpoint.origin}",
                            event=n)  # fmt: skip
            elif doc.get("prev") != (prev.hex() if prev else None):
                raise _fail(f"event {n}'s leaf does not chain to event {n - 1} (an event is missing or changed)",
                            event=n)  # fmt: skip
            if index <= last:
                raise _fail(f"event {n}'s leaf {index} does not follow leaf {last} of event {n - 1}", event=n)
            last = index
            try:
                verify_inclusion(self.hasher, index, checkpoint.size, leaf_hash, proof, checkpoint.root_hash)
            except (VerificationError, MalformedError) as exc:
                raise _fail(f"event {n} (leaf {index}) is not proved in the checkpoint: {exc.diagnostics()}",
                            event=n) from None  # fmt: skip
            prev = leaf_hash
            if leaf is None:
                withheld.append(version)
            else:
                out.append(PackageEvent(version, index, leaf, doc, view))
        if not out:
            raise _fail("the package holds no event")
        if info.get("Sifa-Version") != str(len(out) + len(withheld)):
            raise _fail(f"bag-info says {info.get('Sifa-Version')} events; the package holds "
                        f"{len(out) + len(withheld)}")  # fmt: skip
        if out[0].doc.get("type") != "Opened":
            raise _fail("the first event is not the dossier's opening")
        return out, withheld

    def _disclosures(self, data: bytes, events: list[PackageEvent]) -> dict[str, dict[str, Any]]:
        try:
            doc = boundedjson.loads(data) if data.strip() else {}
            if not isinstance(doc, dict):
                raise TypeError("an object by event version")
        except (ValueError, TypeError) as exc:
            raise _fail(f"{DISCLOSURES} is unreadable: {exc}") from None
        by_version = {str(e.version): e for e in events}
        for version, records in doc.items():
            event = by_version.get(version)
            if event is not None and event.view is not None:  # sifa-leaf/2: disclosures, checked and opened
                _open_fields(event, records, version)
                continue
            if event is None or not isinstance(records, dict):
                raise _fail(f"{DISCLOSURES} speaks of event {version!r}, which the package does not hold")
            for key, value in records.items():
                leafed = event.doc["body"].get(key)
                if key not in PERSONAL_RECORDS or leafed is None:
                    raise _fail(f"{DISCLOSURES}: event {version} has no personal record {key!r}")
                clear = value if isinstance(value, list) else [value]
                committed = leafed if isinstance(leafed, list) else [leafed]
                if len(clear) != len(committed):
                    raise _fail(f"{DISCLOSURES}: event {version} {key}: {len(clear)} records for {len(committed)}")
                for record, leaf_record in zip(clear, committed, strict=True):
                    _open_record(record, leaf_record, f"event {version} {key}")
        return doc


def _v2_doc(view: LeafView) -> dict[str, Any]:
    """A ``sifa-leaf/2`` leaf as an envelope reads, its body the files it names (disclosures add the rest)."""
    body: dict[str, Any] = {}
    for f in view.files:
        body[f.field] = f.sha256
        size_field = FILE_FIELDS[f.field]
        if size_field is not None and f.size is not None:
            body[size_field] = f.size
    return {"format": LEAF_FORMAT, "origin": view.origin, "seq": view.seq, "position": view.position,
            "dossier": view.dossier, "version": view.version, "type": view.type, "time": view.time,
            "prev": view.prev, "body": body}  # fmt: skip


def _open_fields(event: PackageEvent, disclosures: Any, version: str) -> None:
    """Check one event's disclosures against its leaf's commitments; add what they open to its ``body``."""
    assert event.view is not None
    if not isinstance(disclosures, list):
        raise _fail(f"{DISCLOSURES}: event {version} (a {LEAF_FORMAT} leaf) takes a list of disclosures")
    try:
        opened = verify_disclosures(event.view, disclosures)
        event.doc["body"].update(unflatten(opened))
    except DisclosureError as exc:
        raise _fail(f"{DISCLOSURES}: event {version}: {exc.diagnostics()}", check="disclosures", event=event.version,
                    path=exc.detail.get("path")) from None  # fmt: skip
    except ValueError as exc:
        raise _fail(f"{DISCLOSURES}: event {version}: the disclosed fields do not form one body: {exc}") from None


def _open_record(record: Any, leaf_record: Any, where: str) -> None:
    try:
        commitments = leaf_record["commitments"]
        salts = record["salts"]
        if set(salts) != set(commitments) or set(record) - {"role", "kind", "salts", *salts}:
            raise ValueError("the disclosed fields are not the committed ones")
        if (record["role"], record["kind"]) != (leaf_record["role"], leaf_record["kind"]):
            raise ValueError("the disclosed role or kind is not the leaf's")
        for name, salt in salts.items():
            try:
                verify_disclosure(commitments[name], record[name], bytes.fromhex(salt))
            except DisclosureError:
                raise ValueError(f"{name} does not open its commitment") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"{DISCLOSURES}: {where}: {exc}") from None


def read_package(stream: Readable, logs: Sequence[Verifier], *, witnesses: Sequence[CosignatureVerifier] = (),
                 quorum: int = 0, sink: Sink = hash_sink, progress: Progress | None = None,
                 seen: PackageSeen | None = None, limit: int = MAX_PACKAGE_BYTES,
                 withheld: bool = False) -> Package:  # fmt: skip
    """Read a package stream once, checking every byte; return what it holds.

    Every event's leaf is proved against the package's checkpoint, signed by one of ``logs``
    (and cosigned by ``quorum`` of ``witnesses``); the events form the dossier's whole chain
    from its opening; every payload file is named by an event and hashes to its name (``sink``
    receives each file's bytes, once, after all of this was checked). ``seen`` (optional) is
    filled as checks pass, so that a caller can say what verified before a failure. ``withheld``:
    accept a copy that withholds events (a lawyer's copy without the 副卷): each is proved by its
    leaf hash only; their versions are in ``Package.withheld``, their files simply absent. Raises
    PackageError naming the first thing that does not verify, MalformedPackageError for a stream
    that is not a tar stream this reader reads (evidence/tarstream.py) or holds more than ``limit``
    bytes (the stream's length, where known).
    """
    return _Reader(logs, witnesses, quorum, sink, progress, seen or PackageSeen(), withheld).read(stream, limit)


def read_package_bytes(data: bytes, logs: Sequence[Verifier], **kw: Any) -> Package:
    return read_package(io.BytesIO(data), logs, limit=len(data), **kw)
