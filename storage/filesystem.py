"""Filesystem blob store: the embedded default, content-addressed files under the data dir.

Layout under ``root``: ``blobs/ab/cd/<sha256>`` (write-once), ``tmp/`` (writes in
progress, same filesystem so the final step is atomic), ``retention/<sha256>``
(the locked-until time, UTC ISO 8601), ``quarantine/<sha256>`` (a blob found
corrupt). A write goes to a temp file, is fsync'd, then hard-linked to its final
name (which never replaces an existing file) and the directory fsync'd: a crash
never leaves a half file under a final name. Only a corrupt copy is ever replaced
(renamed over), by bytes that hash to its name.

Only the node's user may read any of it: folders 0700, blobs 0400, records 0600.
A store left looser by an older sifa (folders 0755, blobs 0444) is tightened when
opened. A full disk (ENOSPC, EDQUOT) is ``StorageFullError``, the temp file removed.

Locking makes the file read-only and, where the kernel allows (root on ext4,
xfs, btrfs), immutable (FS_IMMUTABLE_FL): not even root can then change or
remove it without first clearing the flag, which needs CAP_LINUX_IMMUTABLE.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import queue
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn

from storage.blobstore import CHUNK, BlobInfo, BlobStore, HashingReader, Source, check_digest, check_range
from storage.errors import BlobLockedError, BlobNotFoundError, StorageError, StorageFullError

log = logging.getLogger(__name__)

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010
STALE_TMP_SECONDS = 3600  # a write not touched for an hour was cut (a killed node): its leftover goes
FULL = (errno.ENOSPC, errno.EDQUOT)
PRIVATE = 0o077  # group and other bits: none may be set under the root


def _failed(exc: OSError, what: str) -> NoReturn:
    """An OS error as the project's: a full disk or quota first, then any other."""
    if exc.errno in FULL:
        raise StorageFullError(f"no room left to store {what} ({exc.strerror}); nothing was stored") from exc
    raise StorageError(f"could not store {what}: {exc.strerror}") from exc


def _private_dir(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    """Write a small record through a temp file of its own (two writers of one record never share
    one): 0600, fsync'd, renamed into place."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries durable (after a file is created, linked or renamed in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chmod_then_immutable(path: Path, mode: int) -> bool:
    os.chmod(path, mode)
    return set_immutable(path, True)


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


class _FileChunks(Iterator[bytes]):
    """The bytes [start, stop) of an open file, in chunks. Closing it closes the file, whether
    it was read or not (a generator never started would leave the file to the collector)."""

    def __init__(self, f: BinaryIO, start: int, stop: int) -> None:
        self._f, self._left = f, stop - start
        try:
            f.seek(start)
        except BaseException:
            f.close()
            raise

    def __next__(self) -> bytes:
        if self._left <= 0:
            self.close()
            raise StopIteration
        chunk = self._f.read(min(CHUNK, self._left))
        if not chunk:
            self.close()
            raise StorageError("the blob file ended early")
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._f.close()

    def __del__(self) -> None:
        self._f.close()


def blob_path(root: Path, sha256: str) -> Path:
    """Where the store at ``root`` keeps a blob's bytes (``blobs/ab/cd/<sha256>``).

    Raises InvalidDigestError for a ``sha256`` that is not 64 lower-case hex digits."""
    check_digest(sha256)
    return root / "blobs" / sha256[:2] / sha256[2:4] / sha256


class FilesystemBlobStore(BlobStore):
    """Blobs as files under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            if not self.root.is_dir():
                self.root.parent.mkdir(parents=True, exist_ok=True)
                _private_dir(self.root)
            if os.stat(self.root).st_mode & PRIVATE:
                self._tighten()
            for sub in ("blobs", "tmp", "retention", "quarantine"):
                _private_dir(self.root / sub)
            self._sweep_tmp()
        except OSError as exc:
            raise StorageError(f"cannot use {self.root} for blobs: {exc.strerror}") from exc

    def _tighten(self) -> None:
        """Take group and other access off everything under the root (a store of an older sifa)."""
        log.warning("blob store %s is readable by other users: taking their access away", self.root)
        for dirpath, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                path = Path(dirpath) / name
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode) or not mode & PRIVATE:
                    continue
                try:
                    os.chmod(path, mode & 0o7700)
                except PermissionError:  # an immutable (locked) blob: lift the flag for the change, if allowed
                    if not (set_immutable(path, False) and _chmod_then_immutable(path, mode & 0o7700)):
                        log.warning("could not take other users' access to %s away (immutable)", path)
        os.chmod(self.root, os.stat(self.root).st_mode & 0o7700)  # last: a walk cut short runs again

    def _sweep_tmp(self) -> None:
        # Leftovers of writes a crash interrupted; never under a final name.
        cutoff = time.time() - STALE_TMP_SECONDS
        for entry in os.scandir(self.root / "tmp"):
            if entry.stat().st_mtime < cutoff:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def path(self, sha256: str) -> Path:
        """Where a blob's bytes live: only the validated hex digest names the path."""
        return blob_path(self.root, sha256)

    def put(self, source: Source, expected_sha256: str | None = None) -> BlobInfo:
        if expected_sha256 is not None:
            check_digest(expected_sha256)
        reader = HashingReader(source, WRITE_CHUNK)
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix="put-")  # 0600
        except OSError as exc:
            _failed(exc, "the blob")
        tmp = Path(tmp_name)
        try:
            with _Writer(fd) as writer:
                for chunk in reader:
                    writer.write(chunk)
            digest = reader.check(expected_sha256)
            final = self.path(digest)
            _private_dir(final.parent.parent)
            _private_dir(final.parent)
            os.chmod(tmp, 0o400)
            while True:
                try:
                    os.link(tmp, final)  # never replaces: write-once
                except FileExistsError:
                    if self._sound(digest, reader.size) is not None:
                        try:  # the same bytes again: say so by the time, which collection reads (below)
                            os.utime(final)
                        except FileNotFoundError:
                            continue  # collected meanwhile: store these bytes after all
                        except PermissionError:
                            pass  # an immutable (locked) blob, which is never collected
                        return self.stat(digest)
                    self._replace(tmp, final, digest)
                    self._restored(digest)
                else:
                    fsync_dir(final.parent)
                return self.stat(digest)
        except OSError as exc:
            if reader.source_failed:
                raise
            _failed(exc, "the blob")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _replace(self, tmp: Path, final: Path, digest: str) -> None:
        """Rename verified bytes over a corrupt copy (lifting and restoring its immutable flag)."""
        set_immutable(final, False)
        try:
            os.replace(tmp, final)
        except PermissionError as exc:
            raise BlobLockedError(f"the corrupt copy of {digest} is immutable and this process may not lift the "
                                  "flag (CAP_LINUX_IMMUTABLE): restore it as root") from exc  # fmt: skip
        fsync_dir(final.parent)
        if self._locked_until(digest) is not None and not set_immutable(final, True):
            log.warning("filesystem refuses the immutable flag for %s: locked by mode and record only", final)

    def _open(self, sha256: str, start: int, end: int | None) -> tuple[Iterator[bytes], int]:
        path = self.path(sha256)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {sha256}") from None
        try:
            size = os.fstat(f.fileno()).st_size
            stop = check_range(size, start, end)
        except BaseException:
            f.close()
            raise
        return _FileChunks(f, start, stop), size

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

    @contextlib.contextmanager
    def _retention_lock(self) -> Iterator[None]:
        """Held while a retention is read and extended: one at a time, across threads and processes
        (an flock on a file of its own per holder, so threads of one process exclude each other too)."""
        fd = os.open(self.root / "retention" / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def lock(self, sha256: str, until: datetime) -> BlobInfo:
        try:
            with self._retention_lock():
                if self._check_extension(sha256, until) is None:
                    return self.stat(sha256)  # locked longer already: the later time stays
                _write_private(self.root / "retention" / sha256, until.astimezone(UTC).isoformat() + "\n")
        except OSError as exc:
            _failed(exc, f"the retention of {sha256}")
        path = self.path(sha256)
        if path.stat().st_mode & 0o777 != 0o400:  # put made it 0400; an immutable file refuses chmod
            os.chmod(path, 0o400)
        if not set_immutable(path, True):
            log.warning("filesystem refuses the immutable flag for %s: locked by mode and record only", path)
        return self.stat(sha256)

    # Collection of blobs no event names (left by an import or upload that failed part-way; dossier/
    # fixity.py decides which). A blob is first *claimed* — renamed into collect/, atomically — then
    # checked again and either discarded or put back. ``put`` of the same bytes touches the blob's
    # time, and stores its bytes afresh if the blob was claimed meanwhile, so an upload racing the
    # collection either shows in the time the collector reads after its claim, or writes its own copy.

    def unlocked(self) -> Iterator[tuple[str, float]]:
        """(sha256, modification time) of every stored blob without a retention lock."""
        for dirpath, _, files in os.walk(self.root / "blobs"):
            for name in files:
                if len(name) == 64 and not (self.root / "retention" / name).exists():
                    with contextlib.suppress(FileNotFoundError):
                        yield name, os.stat(Path(dirpath) / name).st_mtime

    def claim(self, sha256: str) -> float | None:
        """Move an unlocked blob aside for collection; its modification time, or None if it is gone
        (or locked). The blob is then absent to every reader until ``unclaim``."""
        if self._locked_until(sha256) is not None:
            return None
        _private_dir(self.root / "collect")
        aside = self.root / "collect" / check_digest(sha256)
        try:
            os.rename(self.path(sha256), aside)
        except FileNotFoundError:
            return None
        return os.stat(aside).st_mtime

    def unclaim(self, sha256: str) -> None:
        """Put a claimed blob back (unless the same bytes were stored again meanwhile)."""
        aside = self.root / "collect" / check_digest(sha256)
        with contextlib.suppress(FileExistsError):
            os.link(aside, self.path(sha256))
            fsync_dir(self.path(sha256).parent)
        os.unlink(aside)

    def discard(self, sha256: str) -> None:
        """Delete a claimed blob for good (and its quarantine: a put since lifted it, or nothing is left)."""
        os.unlink(self.root / "collect" / check_digest(sha256))
        self._release(sha256)

    def quarantined(self, sha256: str) -> bool:
        return (self.root / "quarantine" / check_digest(sha256)).exists()

    def _quarantine(self, sha256: str, finding: str) -> None:
        record = {"sha256": sha256, "finding": finding, "found": datetime.now(UTC).isoformat(timespec="seconds")}
        _write_private(self.root / "quarantine" / check_digest(sha256), json.dumps(record) + "\n")

    def _release(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / "quarantine" / check_digest(sha256))
