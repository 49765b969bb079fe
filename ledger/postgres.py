"""PostgreSQL tree store: production, shared by a court's API workers.

The sequencer lock is a session advisory lock (one per database, so one per court's log) held on
a connection of its own: the server releases it when that connection ends, however its holder died.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger import sqlstore
from ledger.errors import TreeStoreError, TreeStoreUnavailableError
from ledger.store import SequencerBusyError, SequencerLease, TreeConflictError

SCHEMA_LOCK = 72616  # transaction advisory lock: workers starting together create the schema in turn
SEQUENCER_LOCK = 72617  # session advisory lock: the one sequencer of this database's log
# pg_locks shows a bigint advisory key as classid (high 32 bits), objid (low 32 bits), objsubid 1.
LOCK_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    f" AND classid = {SEQUENCER_LOCK >> 32} AND objid = {SEQUENCER_LOCK & 0xFFFFFFFF} AND objsubid = 1)"
)


class _SessionLease(SequencerLease):
    """The advisory lock of one dedicated connection; closing it releases the lock."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn: psycopg.Connection[Any] | None = conn
        self._guard = threading.Lock()

    def held(self) -> bool:
        with self._guard:
            if self._conn is None:
                return False
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:  # the connection is gone, and the lock with it
                self._conn.close()
                self._conn = None
                return False

    def release(self) -> None:
        with self._guard:
            conn, self._conn = self._conn, None
        if conn is not None:
            # Unlock before closing: a closed connection's backend ends (and drops the lock) only
            # some moments later, and whoever asks next must find the lock free.
            with suppress(psycopg.Error):
                conn.execute(f"SELECT pg_advisory_unlock({SEQUENCER_LOCK})")
            conn.close()


class PostgresTreeStore(sqlstore.SQLTreeStore):
    """Tiles, entry bundles and checkpoints in PostgreSQL tables."""

    _arrays = True

    @staticmethod
    def _sql(statement: str) -> str:
        return statement.replace("?", "%s")

    def __init__(self, conninfo: str, *, pool_size: int = 4, timeout: float = 5.0) -> None:
        self._conninfo, self._timeout = conninfo, timeout
        # check: a connection the server dropped (a restart) is replaced when taken, not handed out dead.
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": False},
            check=ConnectionPool.check_connection,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
            with self._cursor(write=True) as cur:
                cur.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
                for statement in sqlstore.SCHEMA:
                    cur.execute(statement.format(blob="BYTEA", without_rowid=""))
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _cursor(self, write: bool = False) -> Iterator[Any]:
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except (TreeConflictError, TreeStoreError):
            raise
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise TreeStoreUnavailableError(f"tree store unavailable: {exc}") from exc
        except psycopg.Error as exc:
            raise TreeStoreError(f"tree store failed: {exc}") from exc

    def sequencer_lock(self) -> SequencerLease:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout)))
        except psycopg.Error as exc:
            raise TreeStoreUnavailableError(f"tree store unavailable: {exc}") from exc
        try:
            row = conn.execute(f"SELECT pg_try_advisory_lock({SEQUENCER_LOCK})").fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise TreeStoreUnavailableError(f"tree store unavailable: {exc}") from exc
        if row is None or not row[0]:
            conn.close()
            raise SequencerBusyError("another sequencer seals this log (it holds the database's sequencer lock)")
        return _SessionLease(conn)

    def _sequencer_alive(self) -> bool:
        with self._cursor() as cur:
            cur.execute(LOCK_HELD)
            return bool(cur.fetchone()[0])

    def close(self) -> None:
        self._pool.close()
