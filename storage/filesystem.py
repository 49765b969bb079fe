"""Filesystem blob store: the embedded default, content-addressed files under the data dir.

Layout under ``root``: ``blobs/ab/cd/<sha256>`` (write-once), ``tmp/`` (writes in
progress, same filesystem so the final step is atomic), ``retention/<sha256>``
(the locked-until time, UTC ISO 8601). A write goes to a temp file, is fsync'd,
then hard-linked to its final name (which never replaces an existing file) and
the directory fsync'd: a crash never leaves a half file under a final name.

Locking makes the file read-only and, where the kernel allows (root on ext4,
xfs, btrfs), immutable (FS_IMMUTABLE_FL): not even root can then change or
remove it without first clearing the flag, which needs CAP_LINUX_IMMUTABLE.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage.blobstore import CHUNK, BlobInfo, BlobStore, HashingReader, Source, check_digest, check_range
from storage.errors import BlobConflictError, BlobNotFoundError, StorageError

log = logging.getLogger(__name__)

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010
STALE_TMP_SECONDS = 24 * 3600


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_immutable(path: Path, on: bool) -> bool:
    """Set or clear the immutable attribute; False where the kernel or filesystem refuses."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        buf = bytearray(fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0)))
        flags = struct.unpack("i", buf)[0]
        flags = flags | FS_IMMUTABLE_FL if on else flags & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


WRITE_CHUNK = 4 << 20
SYNC_EVERY = 64 << 20


class _Writer:
    """Writes and fsyncs a file on a second thread while the caller reads and hashes.

    Hashing and disk writes both release the GIL, so the two overlap; syncing
    every 64 MiB keeps the final fsync short. At most four chunks are in flight.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blob-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        unsynced = 0
        try:
            while (chunk := self._queue.get()) is not None:
                if self._error is None:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(self._fd, view) :]
                    unsynced += len(chunk)
                    if unsynced >= SYNC_EVERY:
                        os.fdatasync(self._fd)
                        unsynced = 0
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
            while self._queue.get() is not None:
                pass

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            if self._error is not None:
                raise self._error
            if kind is None:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)


class FilesystemBlobStore(BlobStore):
    """Blobs as files under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            for sub in ("blobs", "tmp", "retention"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self._sweep_tmp()
        except OSError as exc:
            raise StorageError(f"cannot use {self.root} for blobs: {exc.strerror}") from exc

    def _sweep_tmp(self) -> None:
        # Leftovers of writes a crash interrupted; never under a final name.
        cutoff = time.time() - STALE_TMP_SECONDS
        for entry in os.scandir(self.root / "tmp"):
            if entry.stat().st_mtime < cutoff:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def path(self, sha256: str) -> Path:
        """Where a blob's bytes live: only the validated hex digest names the path."""
        check_digest(sha256)
        return self.root / "blobs" / sha256[:2] / sha256[2:4] / sha256

    def put(self, source: Source, expected_sha256: str | None = None) -> BlobInfo:
        if expected_sha256 is not None:
            check_digest(expected_sha256)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix="put-")
        tmp = Path(tmp_name)
        reader = HashingReader(source, WRITE_CHUNK)
        try:
            with _Writer(fd) as writer:
                for chunk in reader:
                    writer.write(chunk)
            digest = reader.check(expected_sha256)
            final = self.path(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tmp, final)  # never replaces: write-once
            except FileExistsError:
                if final.stat().st_size != reader.size:
                    raise BlobConflictError(f"different bytes are already stored as {digest}") from None
            else:
                os.chmod(final, 0o444)
                _fsync_dir(final.parent)
            return self.stat(digest)
        except OSError as exc:
            if reader.source_failed:
                raise
            raise StorageError(f"could not store the blob: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.path(sha256)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {sha256}") from None
        try:
            stop = check_range(os.fstat(f.fileno()).st_size, start, end)
        except BaseException:
            f.close()
            raise
        return self._stream(f, start, stop)

    @staticmethod
    def _stream(f: BinaryIO, start: int, stop: int) -> Iterator[bytes]:
        try:
            f.seek(start)
            left = stop - start
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise StorageError("the blob file ended early")
                left -= len(chunk)
                yield chunk
        finally:
            f.close()

    def _locked_until(self, sha256: str) -> datetime | None:
        try:
            return datetime.fromisoformat((self.root / "retention" / sha256).read_text().strip())
        except FileNotFoundError:
            return None

    def stat(self, sha256: str) -> BlobInfo:
        try:
            size = self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {sha256}") from None
        return BlobInfo(sha256, size, self._locked_until(sha256))

    def lock(self, sha256: str, until: datetime) -> BlobInfo:
        self._check_extension(sha256, until)
        record = self.root / "retention" / sha256
        tmp = record.with_suffix(".tmp")
        tmp.write_text(until.astimezone(UTC).isoformat() + "\n")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, record)
        _fsync_dir(record.parent)
        path = self.path(sha256)
        if path.stat().st_mode & 0o777 != 0o444:  # put made it 0444; an immutable file refuses chmod
            os.chmod(path, 0o444)
        if not set_immutable(path, True):
            log.warning("filesystem refuses the immutable flag for %s: locked by mode and record only", path)
        return self.stat(sha256)
