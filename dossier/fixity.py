"""Fixity: every file the court keeps, re-hashed on a schedule at a bounded rate, repaired from another copy.

A sweep reads every file a stored event names through the blob store's verified read, paced to at
most ``bytes_per_second``: a file whose bytes no longer hash to its name is quarantined and an
ALARM logged by the store (storage/blobstore.py); a file gone is alarmed here. Each such file is
then looked for in the repair sources, in order:

- ``ArchivePackages``: an archived dossier's package (a BagIt tar kept as a blob, itself named by
  its hash) holds every file of the dossier; its ``manifest-sha256.txt`` names the member;
- ``CopiesDir``: a folder of content-addressed copies — a ``sifa backup`` dir (``blobs/ab/cd/<sha>``),
  or files fetched from a peer court that received the dossier, laid out the same way;
- the peer courts a holding dossier was transferred to, asked over the network: a source the node
  builds in api/ (api/peer_repair.py ``PeerCourts``), since this package knows no HTTP.

A copy is put back through ``BlobStore.put``, which hashes it again and takes it only if it hashes
to the name (a rotten copy changes nothing). A repair is recorded as a ``FileRepaired`` event in
every dossier that holds the file (its hash, the source, what was found), so the log says when
and from where a file was put back.
"""

from __future__ import annotations

import logging
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from dossier.files import PAGE, referenced_files
from storage.blobstore import BlobStore
from storage.errors import BlobCorruptError, BlobLockedError, BlobNotFoundError, StorageError

if TYPE_CHECKING:
    from dossier.application import DossierApp

log = logging.getLogger("sifa.fixity")

ACTOR, ROLE = "sifa fixity", "system"  # who records a repair: the node itself
SAVE_TRIES = 5
ANOTHER = "another sweep"  # the source a report names for a file another sweep put back meanwhile
TAG_MANIFEST = "manifest-sha256.txt"


class Stop(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class _Never:
    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        if timeout:
            time.sleep(timeout)
        return False


@dataclass
class FixityReport:
    """One sweep: files and bytes re-hashed, what was found, what was put back (sha256 -> source)."""

    checked: int = 0
    bytes: int = 0
    seconds: float = 0.0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    repaired: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Nothing found, or everything found put back."""
        return all(sha in self.repaired for sha in (*self.corrupt, *self.missing))

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "corrupt": self.corrupt, "missing": self.missing, "repaired": self.repaired,
                "clean": self.clean}  # fmt: skip


class RepairSource(Protocol):
    name: str

    def repair(self, sha256: str, blobs: BlobStore, holders: set[str]) -> bool:
        """Put the right bytes of ``sha256`` into ``blobs`` if this source has them; whether it did."""


class CopiesDir:
    """Content-addressed copies under ``root/blobs/ab/cd/<sha256>`` (a ``sifa backup`` dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"copies {root}"

    def repair(self, sha256: str, blobs: BlobStore, holders: set[str]) -> bool:
        path = self.root / "blobs" / sha256[:2] / sha256[2:4] / sha256
        try:
            with path.open("rb") as f:
                blobs.put(f, sha256)
        except (OSError, StorageError) as exc:  # no copy here, or a copy that does not hash to its name
            log.info("no good copy of %s in %s: %s", sha256, self.root, exc)
            return False
        return True


class _Chunks:
    """A file-like reader over an iterator of chunks (tarfile's stream mode reads from it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buf = chunks, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out


class ArchivePackages:
    """The archive packages of the archived dossiers that hold the file."""

    name = "archive package"

    def __init__(self, app: DossierApp) -> None:
        self.app = app

    def repair(self, sha256: str, blobs: BlobStore, holders: set[str]) -> bool:
        for dossier in sorted(holders):
            try:
                archived = self.app.get(dossier, copy=False).archived
            except Exception:  # an unreadable dossier is the audit's to report
                continue
            package = archived and archived.get("package_sha256")
            if not package or package == sha256:
                continue
            try:
                if _from_package(blobs, package, sha256):
                    self.name = f"archive package {package}"
                    return True
            except (StorageError, tarfile.TarError, OSError, ValueError) as exc:
                log.warning("archive package %s of dossier %s gave no copy of %s: %s", package, dossier, sha256, exc)
        return False


def _from_package(blobs: BlobStore, package: str, sha256: str) -> bool:
    """Stream the package (verified as it streams) and put the member the manifest names for ``sha256``."""
    wanted: set[str] = set()
    with tarfile.open(fileobj=_Chunks(blobs.read(package)), mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            name = member.name
            if name == TAG_MANIFEST:
                f = tar.extractfile(member)
                assert f is not None
                for line in f.read().decode("utf-8").splitlines():
                    digest, _, path = line.partition(" ")
                    if digest == sha256:
                        wanted.add(path.strip())
            elif member.isfile() and name in wanted:
                f = tar.extractfile(member)
                assert f is not None
                blobs.put(_Reader(f), sha256)
                return True
    return False


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, size: int = -1, /) -> bytes:
        return self._f.read(size)


class Fixity:
    """Sweeps of a court's files: re-hash, alarm, repair, record."""

    def __init__(self, app: DossierApp, blobs: BlobStore, *, bytes_per_second: int,
                 sources: Sequence[RepairSource] = ()) -> None:  # fmt: skip
        """``bytes_per_second``: the most a sweep reads (0: unbounded). Raises ValueError below 0."""
        if bytes_per_second < 0:
            raise ValueError("bytes_per_second is 0 (unbounded) or more")
        self.app, self.blobs, self.rate, self.sources = app, blobs, bytes_per_second, list(sources)

    def sweep(self, stop: Stop | None = None) -> FixityReport:
        """Re-hash every file the events name, once; repair and record what is found. Stops early
        (between chunks) once ``stop`` is set."""
        stop = stop or _Never()
        report = FixityReport()
        started = time.monotonic()
        holders: dict[str, set[str]] = {}
        for sha, dossier in referenced_files(self.app):
            holders.setdefault(sha, set()).add(dossier)
        for sha in holders:
            if stop.is_set():
                break
            seen = self.app.recorder.max_notification_id() or 0  # a repair recorded after this is another's
            finding = self._check(sha, report, started, stop)
            if finding is not None:
                self._repair(sha, holders[sha], finding, report, seen)
        report.seconds = time.monotonic() - started
        return report

    def _check(self, sha: str, report: FixityReport, started: float, stop: Stop) -> str | None:
        """What is wrong with the file (None: it hashes to its name), read at the bounded rate."""
        try:
            if self.blobs.quarantined(sha):
                self.blobs.verify(sha)  # put back in place since? then released
            for chunk in self.blobs.read(sha):
                report.bytes += len(chunk)
                if self.rate:
                    ahead = report.bytes / self.rate - (time.monotonic() - started)
                    if ahead > 0 and stop.wait(ahead):
                        return None
        except BlobCorruptError:
            report.corrupt.append(sha)
            return "its stored bytes do not hash to its name"
        except BlobNotFoundError:
            log.error("ALARM: blob %s is gone from the blob store (docs/administration.md)", sha)
            report.missing.append(sha)
            return "it was gone from the blob store"
        finally:
            report.checked += 1
        return None

    def _repair(self, sha: str, holders: set[str], finding: str, report: FixityReport, seen: int | None = None) -> None:
        """``seen``: the event store's last notification before the file was found wrong; a repair of it
        recorded after that is another sweep's (an operator's ``sifa fixity`` beside the node's), which put
        the file back already: it is not asked for again, nor recorded twice."""
        for source in self.sources:
            if self._repaired_since(sha, seen):
                break
            if source.repair(sha, self.blobs, holders):
                size = self.blobs.stat(sha).size
                # All sweeps record in this order: the first dossier's save settles which one records.
                first, *rest = sorted(holders)
                if not self.record(first, sha, size, source.name, finding, seen=seen):
                    break
                for dossier in rest:
                    self.record(dossier, sha, size, source.name, finding)
                report.repaired[sha] = source.name
                log.warning("blob %s repaired from %s (%s)", sha, source.name, finding)
                return
        else:
            log.error("ALARM: blob %s could not be repaired from any source; restore it (sifa restore)", sha)
            return
        report.repaired[sha] = ANOTHER
        log.warning("blob %s was repaired meanwhile by another sweep (%s)", sha, finding)

    def _repaired_since(self, sha: str, seen: int | None) -> bool:
        """Whether a ``FileRepaired`` of ``sha`` was recorded after notification ``seen`` (None: no)."""
        after = seen
        while after is not None:
            notes = self.app.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False)
            if not notes:
                return False
            after = notes[-1].id
            for note in notes:
                if note.topic.rsplit(".", 1)[-1] != "FileRepaired":
                    continue
                try:
                    event = self.app.mapper.to_domain_event(note)
                except Exception:  # unreadable: the audit's to report (it names no repair this sweep can see)
                    continue
                if getattr(event, "sha256", None) == sha:
                    return True
        return False

    def record(self, dossier: str, sha: str, size: int, source: str, finding: str, *,
               seen: int | None = None) -> bool:  # fmt: skip
        """A ``FileRepaired`` event in the dossier (optimistic concurrency: retried on a conflict); False,
        nothing recorded, if ``seen`` is given and another sweep recorded its repair after it."""
        for attempt in range(SAVE_TRIES):
            d = self.app.get(UUID(dossier))
            if self._repaired_since(sha, seen):
                return False
            d.file_repaired(sha256=sha, size=size, source=source, reason=finding, actor=ACTOR, role=ROLE)
            try:
                self.app.save(d)
                return True
            except IntegrityError:
                if attempt + 1 == SAVE_TRIES:
                    raise
        raise AssertionError("unreachable")


# --- collection of blobs no event names ---


@dataclass
class CollectReport:
    collected: list[str] = field(default_factory=list)
    kept_young: int = 0  # unreferenced, but younger than the grace period (an upload may be recording it)
    put_back: list[str] = field(default_factory=list)  # claimed, then found named or touched meanwhile

    def to_dict(self) -> dict[str, Any]:
        return {"collected": self.collected, "kept_young": self.kept_young, "put_back": self.put_back}


class UnreadableEventsError(Exception):
    """Some stored events do not decrypt or decode: what they name is unknown, so nothing is collected."""


def collect(app: DossierApp, blobs: BlobStore, *, older_than: float) -> CollectReport:
    """Delete the blobs no stored event names and nobody stored for ``older_than`` seconds.

    The blobs are listed a page at a time and each candidate is settled as it comes. Safe against an
    upload of the same bytes at the same moment (an upload stores its bytes, then records its event,
    within ``older_than``): each candidate is claimed, then the events stored since the walk began are
    read again and the blob's time looked at again, and it is given back if either names or renews it.
    A ``put`` before the claim renewed its time (or, stored less than ``blobs.renews_after`` ago, left
    it alone, which is why that is added to the grace: such a blob cannot be old enough to collect
    until the upload's event is recorded); a ``put`` after the claim stored a copy that ``discard``
    leaves alone (storage/blobstore.py). A locked blob is never claimed. Raises UnreadableEventsError
    (nothing collected) when an event cannot be read, since it might name any blob."""
    report = CollectReport()
    unreadable: list[int] = []
    last = app.recorder.max_notification_id() or 0
    named = {sha for sha, _ in referenced_files(app, unreadable=unreadable)}
    if unreadable:
        raise UnreadableEventsError(f"{len(unreadable)} stored event(s) cannot be read (sifa audit): nothing is "
                                    "collected while what they name is unknown")  # fmt: skip
    cutoff = time.time() - older_than - blobs.renews_after
    for sha, stored in blobs.unlocked():
        if sha in named:
            continue
        if stored >= cutoff:
            report.kept_young += 1
            continue
        claimed = blobs.claim(sha)
        if claimed is None:
            continue
        since = {s for s, _ in referenced_files(app, after=last, unreadable=unreadable)}
        if sha in since or claimed >= cutoff or unreadable:
            blobs.unclaim(sha)
            report.put_back.append(sha)
            continue
        try:
            blobs.discard(sha)
        except BlobLockedError:
            report.put_back.append(sha)
            continue
        report.collected.append(sha)
        log.warning("blob %s collected: no event names it and it was stored over %.0f s ago", sha, older_than)
    return report
