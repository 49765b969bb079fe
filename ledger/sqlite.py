"""SQLite tree store: the embedded default, one file under the data dir.

The sequencer lock is an exclusive ``flock`` on the database file itself: the kernel releases it
when its holder dies, however, and it cannot be sidestepped by deleting a lock file (a lock file
beside the database, deleted while a node ran, let a second sequencer take a fresh one).

On Linux, ``flock`` locks and the POSIX ``fcntl`` record locks SQLite takes (its default ``unix``
VFS) are independent: neither sees the other, so the sequencer's flock never blocks a reader or a
writer (``test_the_sequencer_lock_is_the_database_file`` checks both ways; not so over NFS, where
flock is emulated with fcntl — keep the data dir local). One POSIX rule still bites: closing *any*
descriptor of a file drops every fcntl lock the process holds on it, SQLite's included. So the
descriptors taken here for flock are opened once per store and closed only when the last store of
this process on that file closes (``_Descriptors``), never per lock or per probe.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from ledger import sqlstore
from ledger.errors import TreeStoreError, TreeStoreUnavailableError
from ledger.store import SequencerBusyError, SequencerLease

MEMORY = ":memory:"
# A health check takes the lock shared for a few microseconds to see whether it is held: a sequencer
# starting just then tries again this often before it takes the lock for taken.
LOCK_TRIES, LOCK_PAUSE = 5, 0.01


class _Descriptors:
    """Descriptors opened on database files for flock, closed only once no store of this process
    has the file open (closing one would drop SQLite's fcntl locks on it; see the module docstring)."""

    _guard = threading.Lock()
    _open: ClassVar[dict[tuple[int, int], tuple[int, list[int]]]] = {}  # (dev, ino) -> (stores, fds)

    @classmethod
    def open(cls, path: Path, count: int) -> tuple[tuple[int, int], list[int]]:
        fds: list[int] = []
        try:
            for _ in range(count):
                fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)  # nothing of SQLite's is open on the file yet
            raise
        st = os.fstat(fds[0])
        key = (st.st_dev, st.st_ino)
        with cls._guard:
            stores, held = cls._open.get(key, (0, []))
            cls._open[key] = (stores + 1, held + fds)
        return key, fds

    @classmethod
    def close(cls, key: tuple[int, int]) -> None:
        with cls._guard:
            stores, held = cls._open.pop(key, (1, []))
            if stores > 1:
                cls._open[key] = (stores - 1, held)
                return
        for fd in held:
            os.close(fd)


class _FileLease(SequencerLease):
    """An exclusive flock on the database file; unlocking releases it (the descriptor stays open)."""

    def __init__(self, fd: int, lease_guard: threading.Lock) -> None:
        self._fd: int | None = fd
        self._guard = threading.Lock()
        self._lease_guard = lease_guard

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._guard:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # its store closed first: the lock went with it
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._lease_guard.release()


class _MemoryLease(SequencerLease):
    """An in-memory database lives in one process: a thread lock is its sequencer lock."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock: threading.Lock | None = lock

    def held(self) -> bool:
        return self._lock is not None

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


class SQLiteTreeStore(sqlstore.SQLTreeStore):
    """Tiles, entry bundles and checkpoints in one SQLite database (WAL, fsync'd)."""

    @staticmethod
    def _sql(statement: str) -> str:
        return statement

    def __init__(self, path: str | Path) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # A commit is durable when it returns: the log acknowledges leaves.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            for statement in sqlstore.SCHEMA:
                self._db.execute(statement.format(blob="BLOB", without_rowid=" WITHOUT ROWID"))
        except sqlite3.Error as exc:
            raise TreeStoreUnavailableError(f"cannot open the tree store at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._path = None if str(path) == MEMORY else Path(path)
        self._memory_lock = threading.Lock()
        self._probe_guard = threading.Lock()
        self._lease_guard = threading.Lock()  # one lease at a time on this store's own descriptor
        self._files: tuple[int, int] | None = None
        self._lock_fd = self._probe_fd = -1
        if self._path is not None:
            try:
                self._files, (self._lock_fd, self._probe_fd) = _Descriptors.open(self._path, 2)
            except OSError as exc:
                self._db.close()
                raise TreeStoreUnavailableError(f"cannot open the tree store at {path}: {exc}") from exc

    @contextmanager
    def _cursor(self, write: bool = False) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._db.cursor()
            try:
                if write:
                    cur.execute("BEGIN IMMEDIATE")
                yield cur
                if write:
                    cur.execute("COMMIT")
            except BaseException as exc:
                if write and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise TreeStoreUnavailableError(f"tree store unavailable: {exc}") from exc
                if isinstance(exc, sqlite3.Error):
                    raise TreeStoreError(f"tree store failed: {exc}") from exc
                raise
            finally:
                cur.close()

    def sequencer_lock(self) -> SequencerLease:
        if self._path is None:
            if not self._memory_lock.acquire(blocking=False):
                raise SequencerBusyError("another sequencer holds this in-memory log")
            return _MemoryLease(self._memory_lock)
        # flock on one open file description is re-entrant: this store's own lease is kept out by a guard.
        if not self._lease_guard.acquire(blocking=False):
            raise SequencerBusyError(f"another sequencer seals this log (it holds a lock on {self._path})")
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return _FileLease(self._lock_fd, self._lease_guard)
            except BlockingIOError:
                if attempt + 1 < LOCK_TRIES:
                    time.sleep(LOCK_PAUSE)
            except OSError as exc:
                self._lease_guard.release()
                raise TreeStoreUnavailableError(f"cannot lock {self._path}: {exc}") from exc
        self._lease_guard.release()
        raise SequencerBusyError(f"another sequencer seals this log (it holds a lock on {self._path})")

    def _sequencer_alive(self) -> bool:
        if self._path is None:
            return self._memory_lock.locked()
        with self._probe_guard:
            try:
                fcntl.flock(self._probe_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(self._probe_fd, fcntl.LOCK_UN)
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._files is not None:
                files, self._files = self._files, None
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)  # a lease still held goes with its store
                _Descriptors.close(files)
