"""SQLite tree store: the embedded default, one file under the data dir.

The sequencer lock is an exclusive ``flock`` on a lock file beside the database
(``<db>-sequencer.lock``): the kernel releases it when its holder dies, however.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger import sqlstore
from ledger.errors import TreeStoreError, TreeStoreUnavailableError
from ledger.store import SequencerBusyError, SequencerLease

MEMORY = ":memory:"
# A health check takes the lock shared for a few microseconds to see whether it is held: a sequencer
# starting just then tries again this often before it takes the lock for taken.
LOCK_TRIES, LOCK_PAUSE = 5, 0.01


class _FileLease(SequencerLease):
    """An exclusive flock on an open lock file; closing the file releases it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._guard = threading.Lock()

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._guard:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


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
                self._db.execute(statement.format(blob="BLOB"))
        except sqlite3.Error as exc:
            raise TreeStoreUnavailableError(f"cannot open the tree store at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._lock_path = None if str(path) == MEMORY else Path(f"{path}-sequencer.lock")
        self._memory_lock = threading.Lock()

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
        if self._lock_path is None:
            if not self._memory_lock.acquire(blocking=False):
                raise SequencerBusyError("another sequencer holds this in-memory log")
            return _MemoryLease(self._memory_lock)
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TreeStoreUnavailableError(f"cannot open the sequencer lock {self._lock_path}: {exc}") from exc
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return _FileLease(fd)
            except BlockingIOError:
                if attempt + 1 < LOCK_TRIES:
                    time.sleep(LOCK_PAUSE)
            except OSError as exc:
                os.close(fd)
                raise TreeStoreUnavailableError(f"cannot lock {self._lock_path}: {exc}") from exc
        os.close(fd)
        raise SequencerBusyError(f"another sequencer seals this log (it holds {self._lock_path})")

    def _sequencer_alive(self) -> bool:
        if self._lock_path is None:
            return self._memory_lock.locked()
        try:
            fd = os.open(self._lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # no sequencer has ever run here
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the shared lock, if it was taken
        return False

    def close(self) -> None:
        with self._lock:
            self._db.close()
