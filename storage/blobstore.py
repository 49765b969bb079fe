"""The blob store port: content-addressed, write-once, streaming.

Adapters: ``storage.filesystem`` (embedded default) and ``storage.s3`` (MinIO or
any S3). Both pass ``tests/test_blob_store.py``. There is no delete path: what
is stored is evidence.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from storage.errors import (
    BlobConflictError,
    BlobLockedError,
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    RangeError,
)

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
    """Content-addressed blobs, written once, never changed, never deleted."""

    @abstractmethod
    def put(self, source: Source, expected_sha256: str | None = None) -> BlobInfo:
        """Store a stream, hashing it as it is read (once).

        Same bytes again is a no-op. Raises DigestMismatchError when the bytes do
        not hash to ``expected_sha256`` (nothing is then visible), BlobConflictError
        when different bytes already sit under that hash.
        """

    @abstractmethod
    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes [start, end) of a blob, streamed in chunks.

        Raises BlobNotFoundError, RangeError (before the first chunk).
        """

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
        """Keep a blob unchangeable and undeletable until ``until`` (WORM retention).

        Retention can be extended, never shortened (BlobLockedError).
        """

    def _check_extension(self, sha256: str, until: datetime) -> BlobInfo:
        """The blob's info, if ``until`` (time-zone aware) does not shorten its retention."""
        if until.tzinfo is None:
            raise BlobLockedError("a retention time must carry its time zone (UTC)")
        info = self.stat(sha256)
        if info.locked_until is not None and until < info.locked_until:
            raise BlobLockedError(
                f"blob {sha256} is locked until {info.locked_until.isoformat()}; retention cannot be shortened"
            )
        return info

    def direct_url(self, sha256: str, seconds: int = 300, filename: str | None = None) -> str | None:
        """A time-limited URL a reader can download from directly, or None if the backend has none."""
        return None

    def verify(self, sha256: str) -> BlobInfo:
        """Re-read a blob and check it still hashes to its name. Raises BlobConflictError."""
        info = self.stat(sha256)
        h = hashlib.sha256()
        for chunk in self.read(sha256):
            h.update(chunk)
        if h.hexdigest() != sha256:
            raise BlobConflictError(f"blob {sha256} no longer hashes to its name (got {h.hexdigest()})")
        return info

    def close(self) -> None:  # noqa: B027 - optional for adapters without connections
        """Release connections."""
