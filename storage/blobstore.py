"""The blob store port: content-addressed, write-once, streaming.

Adapters: ``storage.filesystem`` (embedded default) and ``storage.s3`` (MinIO or
any S3). Both pass ``tests/test_blob_store.py``. What is stored is evidence: the
one delete path is the collection of blobs no event names (``unlocked``, ``claim``,
``unclaim``, ``discard``; dossier/fixity.py decides which), never of a locked one.

A blob is never served as whole unless it is: a read of a whole blob hashes the
bytes as they stream and holds the last chunk back until they hash to the name.
A blob that does not is quarantined (a marker the adapter keeps beside the
blobs, so a restart remembers it), an alarm is logged, and every later read
answers ``BlobCorruptError`` until the right bytes are put again (or found in
place again by ``verify``, i.e. ``sifa audit``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from storage.errors import (
    BlobCorruptError,
    BlobLockedError,
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    RangeError,
    StorageError,
)

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Source = BinaryIO | Readable | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What is known of a stored blob."""

    sha256: str
    size: int
    locked_until: datetime | None = None


def check_digest(sha256: str) -> str:
    """The key itself, if it is 64 lower-case hex digits. Raises InvalidDigestError."""
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise InvalidDigestError("a blob is named by its SHA-256: 64 lower-case hex digits")
    return sha256


def chunks(source: Source, size: int = CHUNK) -> Iterator[bytes]:
    """The source's bytes in chunks of at most ``size`` (files are read, iterables passed on)."""
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(size):
            yield chunk
        return
    for chunk in source:  # type: ignore[union-attr]
        if chunk:
            yield from (chunk[i : i + size] for i in range(0, len(chunk), size))


class HashingReader:
    """Reads a source once in chunks, hashing as it goes."""

    def __init__(self, source: Source, chunk_size: int = CHUNK) -> None:
        self._chunks = chunks(source, chunk_size)
        self._hash = hashlib.sha256()
        self.size = 0
        # Set when the source itself raised: its error is the caller's, passed on as it is.
        self.source_failed = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return
            except BaseException:
                self.source_failed = True
                raise
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def check(self, expected: str | None) -> str:
        """The digest, if it is the expected one. Raises DigestMismatchError."""
        digest = self.hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatchError(
                f"the bytes hash to {digest}, not to the declared {expected}; nothing was stored",
                declared=expected, actual=digest, size=self.size,
            )  # fmt: skip
        return digest


def check_range(size: int, start: int, end: int | None) -> int:
    """The exclusive end of the range [start, end) within a blob of ``size``. Raises RangeError."""
    stop = size if end is None else end
    if not 0 <= start <= stop <= size:
        raise RangeError(f"range {start}..{stop} is outside a blob of {size} bytes")
    return stop


class BlobStore(ABC):
    """Content-addressed blobs, written once, never changed, never deleted but by collection (below)."""

    @abstractmethod
    def put(self, source: Source, expected_sha256: str | None = None) -> BlobInfo:
        """Store a stream, hashing it as it is read (once).

        Same bytes again is a no-op, unless the stored copy is quarantined or of another size
        (so provably corrupt): then the new bytes, which hash to the name, replace it and the
        quarantine is lifted. Raises DigestMismatchError when the bytes do not hash to
        ``expected_sha256``, StorageFullError when there is no room; nothing is then visible.
        """

    def read(self, sha256: str, start: int = 0, end: int | None = None, *, size: int | None = None) -> Iterator[bytes]:
        """The bytes [start, end) of a blob, streamed in chunks.

        A whole blob is verified as it streams: the last chunk is held back until the bytes
        hash to the name; if they do not, the blob is quarantined, an alarm logged, and
        BlobCorruptError raised in place of that chunk (a reader sees a short stream, never
        a whole wrong one). A range is not verified (that would read the whole blob).
        ``size``: the size the caller recorded when the blob was put (a download's
        Content-Length); a blob of another size is corrupt, refused before the first byte —
        else a reader holding the recorded size might see a whole body of wrong bytes.
        Raises BlobNotFoundError, BlobCorruptError (quarantined), RangeError (before the first chunk).
        """
        check_digest(sha256)
        if self.quarantined(sha256):
            raise _corrupt(sha256)
        stream, stored = self._open(sha256, start, end)
        if size is not None and stored != size:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            self._alarm(sha256, f"{stored} bytes are stored, {size} were recorded")
            raise _corrupt(sha256)
        whole = start == 0 and (end is None or end == stored)
        return self._verified(sha256, stream) if whole else stream

    @abstractmethod
    def _open(self, sha256: str, start: int, end: int | None) -> tuple[Iterator[bytes], int]:
        """The raw bytes [start, end), and the size of the whole blob as stored.

        Raises BlobNotFoundError, RangeError (before the first chunk).
        """

    def _verified(self, sha256: str, stream: Iterator[bytes]) -> Iterator[bytes]:
        h = hashlib.sha256()
        held: bytes | None = None
        try:
            for chunk in stream:
                h.update(chunk)
                if held is not None:
                    yield held
                held = chunk
            if h.hexdigest() != sha256:
                self._alarm(sha256, f"its stored bytes hash to {h.hexdigest()}")
                raise _corrupt(sha256)
            if held is not None:
                yield held
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    @abstractmethod
    def stat(self, sha256: str) -> BlobInfo:
        """Size and retention of a blob. Raises BlobNotFoundError."""

    def exists(self, sha256: str) -> bool:
        try:
            self.stat(sha256)
        except BlobNotFoundError:
            return False
        return True

    @abstractmethod
    def lock(self, sha256: str, until: datetime) -> BlobInfo:
        """Keep a blob unchangeable and undeletable until ``until`` (WORM retention); the blob's info.

        Retention is extended, never shortened: a blob locked until later stays locked until then
        (the later of the two wins, also when two callers lock one blob at once). Raises
        BlobNotFoundError, BlobLockedError (a time without its time zone).
        """

    def _check_extension(self, sha256: str, until: datetime) -> BlobInfo | None:
        """The blob's info, if ``until`` (time-zone aware) extends its retention; None if it is locked
        until ``until`` or later already (nothing to do). Raises BlobNotFoundError, BlobLockedError."""
        if until.tzinfo is None:
            raise BlobLockedError("a retention time must carry its time zone (UTC)")
        info = self.stat(sha256)
        if info.locked_until is not None and until <= info.locked_until:
            return None
        return info

    def verify(self, sha256: str) -> BlobInfo:
        """Re-read a whole blob and check it still hashes to its name (``sifa audit``).

        A quarantined blob found whole again (its bytes were put back in place) is released.
        Raises BlobCorruptError (and quarantines the blob), BlobNotFoundError.
        """
        info = self.stat(sha256)
        stream, _ = self._open(sha256, 0, None)
        h = hashlib.sha256()
        for chunk in stream:
            h.update(chunk)
        if h.hexdigest() != sha256:
            self._alarm(sha256, f"its stored bytes hash to {h.hexdigest()}")
            raise _corrupt(sha256)
        if self.quarantined(sha256):
            self._release(sha256)
            log.warning("blob %s hashes to its name again: its quarantine is lifted", sha256)
        return info

    # Quarantine: a marker per corrupt blob, kept by the adapter beside the blobs.

    @abstractmethod
    def quarantined(self, sha256: str) -> bool:
        """Whether the blob is known corrupt (and withheld until restored)."""

    @abstractmethod
    def _quarantine(self, sha256: str, finding: str) -> None:
        """Record that the blob is corrupt and what was found; raises OSError or StorageError if it cannot."""

    @abstractmethod
    def _release(self, sha256: str) -> None:
        """Forget the blob's quarantine (its right bytes are back)."""

    def _alarm(self, sha256: str, finding: str) -> None:
        log.error("ALARM: blob %s is corrupt: %s. It is quarantined and refused (blob_corrupt) until its right "
                  "bytes are restored (docs/administration.md)", sha256, finding)  # fmt: skip
        try:
            self._quarantine(sha256, finding)
        except (OSError, StorageError) as exc:
            log.error("ALARM: the quarantine of blob %s could not be recorded (%s): only this read was refused",
                      sha256, exc)  # fmt: skip

    def _sound(self, sha256: str, size: int) -> BlobInfo | None:
        """The stored copy, if it may stay as it is: present, not quarantined, of ``size`` bytes.

        None when the bytes are to be written: absent, or a copy to replace (quarantined, or of
        another size, which no bytes hashing to the name can have).
        """
        try:
            info = self.stat(sha256)
        except BlobNotFoundError:
            return None
        if info.size == size and not self.quarantined(sha256):
            return info
        if info.size != size:
            log.error("ALARM: blob %s was corrupt (%d bytes stored, %d hash to its name); the bytes just put "
                      "replace it", sha256, info.size, size)  # fmt: skip
        return None

    def _restored(self, sha256: str) -> None:
        """The right bytes were just written over a corrupt copy: lift its quarantine."""
        if self.quarantined(sha256):
            self._release(sha256)
        log.warning("blob %s restored: the bytes just put hash to its name; its quarantine is lifted", sha256)

    # Collection of blobs no event names (left by an import or upload that failed part-way; dossier/fixity.py
    # decides which). The guarantee every adapter gives: a ``put`` of a blob's bytes either renews its stored
    # time (which ``claim`` then reports) or, once the blob is claimed, leaves a copy that ``discard`` does not
    # touch; so an upload racing a collection shows in the time, or keeps its own bytes.

    # A put of bytes already stored renews their stored time if it is older than this many seconds (0: always).
    # A collector adds it to its grace period: a blob put again sooner keeps its time, and may look that much older.
    renews_after: float = 0.0

    @abstractmethod
    def unlocked(self) -> Iterator[tuple[str, float]]:
        """(sha256, stored time as POSIX seconds) of every stored blob not known to be locked, a page at a time
        (memory stays bounded however many blobs there are). An adapter whose listing does not show retention
        (S3) lists locked blobs too: ``claim`` refuses them, before anything is deleted. Raises StorageError."""

    @abstractmethod
    def claim(self, sha256: str) -> float | None:
        """Take a blob for collection: its stored time as of now, or None if it is gone or locked (then it is
        never deleted). From now on a ``put`` of its bytes stores a copy that ``discard`` leaves alone."""

    @abstractmethod
    def unclaim(self, sha256: str) -> None:
        """Give a claimed blob back: it stays as it is (or as a put since left it)."""

    @abstractmethod
    def discard(self, sha256: str) -> None:
        """Delete what was claimed of a blob for good (not what a put stored since the claim).

        Raises BlobLockedError, deleting nothing, if it was locked since the claim."""

    def close(self) -> None:  # noqa: B027 - optional for adapters without connections
        """Release connections."""


def _corrupt(sha256: str) -> BlobCorruptError:
    return BlobCorruptError(f"file {sha256} is corrupt in this node's storage and is withheld until an operator "
                            "restores it", sha256=sha256)  # fmt: skip
