"""PostgreSQL tree store: production, shared by a court's API workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger import sqlstore
from ledger.errors import TreeStoreError, TreeStoreUnavailableError
from ledger.store import TreeConflictError


class PostgresTreeStore(sqlstore.SQLTreeStore):
    """Tiles, entry bundles and checkpoints in PostgreSQL tables."""

    _arrays = True

    @staticmethod
    def _sql(statement: str) -> str:
        return statement.replace("?", "%s")

    def __init__(self, conninfo: str, *, pool_size: int = 4, timeout: float = 5.0) -> None:
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, timeout=timeout, open=False, kwargs={"autocommit": False}
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
            with self._cursor(write=True) as cur:
                # Workers may start together: serialise the schema creation.
                cur.execute("SELECT pg_advisory_xact_lock(72616)")
                for statement in sqlstore.SCHEMA:
                    cur.execute(statement.format(blob="BYTEA"))
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

    def close(self) -> None:
        self._pool.close()
