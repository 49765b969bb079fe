"""SQLite tree store: the embedded default, one file under the data dir."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger import sqlstore
from ledger.errors import TreeStoreError, TreeStoreUnavailableError


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

    def close(self) -> None:
        with self._lock:
            self._db.close()
