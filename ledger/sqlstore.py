"""What the SQL tree stores share: schema and statements.

SQLite and PostgreSQL both speak ``INSERT ... ON CONFLICT DO UPDATE``; the
adapters differ in connections, placeholders and error translation only.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ledger.store import SequencerStatus, Stall, TreeConflictError, TreeState, TreeStore
from ledger.tiles import Tile, TileID

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sifa_tree_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, cursor TEXT)",
    "CREATE TABLE IF NOT EXISTS sifa_tree_tiles ("
    " level INTEGER NOT NULL, idx BIGINT NOT NULL, width INTEGER NOT NULL, data {blob} NOT NULL,"
    " PRIMARY KEY (level, idx))",
    "CREATE TABLE IF NOT EXISTS sifa_tree_entries ( idx BIGINT PRIMARY KEY, data {blob} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sifa_tree_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sifa_tree_timestamps (size BIGINT PRIMARY KEY, token {blob} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sifa_tree_anchors (size BIGINT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sifa_tree_labels ("
    " label TEXT NOT NULL, leaf BIGINT NOT NULL, PRIMARY KEY (label, leaf)){without_rowid}",
    "INSERT INTO sifa_tree_state (id, size, cursor) VALUES (1, 0, NULL) ON CONFLICT (id) DO NOTHING",
    # The sequencer's status, for other processes: when it last committed a checkpoint (Unix time)
    # and the entry it cannot seal (a ledger.store.Stall as JSON), if any.
    "CREATE TABLE IF NOT EXISTS sifa_sequencer ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), checkpointed_at DOUBLE PRECISION, stall TEXT)",
    "INSERT INTO sifa_sequencer (id, checkpointed_at, stall) VALUES (1, NULL, NULL) ON CONFLICT (id) DO NOTHING",
)

UPSERT_TILE = (
    "INSERT INTO sifa_tree_tiles (level, idx, width, data) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (level, idx) DO UPDATE SET width = excluded.width, data = excluded.data"
)
UPSERT_BUNDLE = (
    "INSERT INTO sifa_tree_entries (idx, data) VALUES (?, ?) ON CONFLICT (idx) DO UPDATE SET data = excluded.data"
)
UPSERT_CHECKPOINT = (
    "INSERT INTO sifa_tree_checkpoints (size, note) VALUES (?, ?) ON CONFLICT (size) DO UPDATE SET note = excluded.note"
)
INSERT_LABEL = "INSERT INTO sifa_tree_labels (label, leaf) VALUES (?, ?) ON CONFLICT (label, leaf) DO NOTHING"
# PostgreSQL: a batch's labels (three or more per leaf) as two arrays in one statement, where a row
# per statement was most of the sequencer's time.
INSERT_LABELS_UNNEST = (
    "INSERT INTO sifa_tree_labels (label, leaf) SELECT * FROM unnest(%s::text[], %s::bigint[])"
    " ON CONFLICT (label, leaf) DO NOTHING"
)
# Compare-and-set: the tree advances only from the state (size AND cursor) the writer read.
ADVANCE = "UPDATE sifa_tree_state SET size = ?, cursor = ? WHERE id = 1 AND size = ? AND cursor IS NOT DISTINCT FROM ?"
CHECKPOINTED = "UPDATE sifa_sequencer SET checkpointed_at = ? WHERE id = 1"


Sql = Callable[[str], str]  # rewrites '?' placeholders for the driver


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Any = ...) -> Any: ...

    def executemany(self, sql: str, params: Any) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


def select_state(cur: Cursor, sql: Sql) -> TreeState:
    cur.execute(sql("SELECT size, cursor FROM sifa_tree_state WHERE id = 1"))
    size, cursor = cur.fetchone()
    return TreeState(int(size), cursor)


def select_tiles(cur: Cursor, sql: Sql, ids: Collection[TileID], hash_size: int) -> dict[TileID, Tile]:
    out: dict[TileID, Tile] = {}
    for level, idx in ids:
        cur.execute(sql("SELECT width, data FROM sifa_tree_tiles WHERE level = ? AND idx = ?"), (level, idx))
        row = cur.fetchone()
        if row is not None:
            out[(level, idx)] = Tile(int(row[0]), bytes(row[1]), hash_size)
    return out


def select_bundles(cur: Cursor, sql: Sql, ids: Collection[int]) -> dict[int, bytes]:
    ids = sorted(ids)
    if not ids:
        return {}
    cur.execute(sql("SELECT idx, data FROM sifa_tree_entries WHERE idx >= ? AND idx <= ?"), (ids[0], ids[-1]))
    wanted = set(ids)
    return {int(i): bytes(d) for i, d in cur.fetchall() if int(i) in wanted}


def write_integration(
    cur: Cursor,
    sql: Sql,
    old: TreeState,
    new_size: int,
    cursor: str | None,
    tiles: Mapping[TileID, Tile],
    bundles: Mapping[int, bytes],
    labels: Sequence[tuple[str, int]] = (),
    checkpoint: str | None = None,
    arrays: bool = False,
) -> None:
    """Inside the caller's transaction: advance the state first (compare-and-set), then the writes.
    ``arrays``: the driver takes arrays (PostgreSQL), so the labels go in one statement."""
    cur.execute(sql(ADVANCE), (new_size, cursor, old.size, old.cursor))
    if cur.rowcount != 1:
        raise TreeConflictError(f"the tree is no longer at size {old.size}, cursor {old.cursor}; another writer "
                                "appended")  # fmt: skip
    cur.executemany(sql(UPSERT_TILE), [(lv, ix, t.width, t.data) for (lv, ix), t in tiles.items()])
    cur.executemany(sql(UPSERT_BUNDLE), list(bundles.items()))
    if labels and arrays:
        cur.execute(INSERT_LABELS_UNNEST, ([label for label, _ in labels], [leaf for _, leaf in labels]))
    elif labels:
        cur.executemany(sql(INSERT_LABEL), list(labels))
    if checkpoint is not None:
        cur.execute(sql(UPSERT_CHECKPOINT), (new_size, checkpoint))
        cur.execute(sql(CHECKPOINTED), (time.time(),))


def select_checkpoint(cur: Cursor, sql: Sql, size: int | None) -> tuple[int, str] | None:
    if size is None:
        cur.execute(sql("SELECT size, note FROM sifa_tree_checkpoints ORDER BY size DESC LIMIT 1"))
    else:
        cur.execute(sql("SELECT size, note FROM sifa_tree_checkpoints WHERE size = ?"), (size,))
    row = cur.fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


class SQLTreeStore(TreeStore):
    """The port's methods over a SQL cursor; adapters give ``_cursor`` and ``_sql``."""

    _arrays = False  # the driver binds lists as SQL arrays

    @staticmethod
    @abstractmethod
    def _sql(statement: str) -> str:
        """The statement in the driver's placeholder style."""

    @abstractmethod
    def _cursor(self, write: bool = False) -> AbstractContextManager[Any]:
        """A cursor inside one transaction; backend errors translated."""

    def state(self) -> TreeState:
        with self._cursor() as cur:
            return select_state(cur, self._sql)

    def read_tiles(self, ids: Collection[TileID]) -> dict[TileID, Tile]:
        with self._cursor() as cur:
            return select_tiles(cur, self._sql, ids, self.hash_size)

    def read_bundles(self, ids: Collection[int]) -> dict[int, bytes]:
        with self._cursor() as cur:
            return select_bundles(cur, self._sql, ids)

    def commit(
        self,
        old: TreeState,
        new_size: int,
        cursor: str | None,
        tiles: Mapping[TileID, Tile],
        bundles: Mapping[int, bytes],
        labels: Sequence[tuple[str, int]] = (),
        checkpoint: str | None = None,
    ) -> None:
        with self._cursor(write=True) as cur:
            write_integration(cur, self._sql, old, new_size, cursor, tiles, bundles, labels, checkpoint,
                              self._arrays)  # fmt: skip

    def _by_size(self, table: str, column: str, above: int, newest_first: bool,
                 limit: int | None) -> list[tuple[int, Any]]:  # fmt: skip
        """``(size, column)`` of the rows of ``table`` (one of this module's) above ``above``, ordered by
        size, at most ``limit``: checkpoints, timestamps and anchors are each kept by tree size."""
        order = "DESC" if newest_first else "ASC"
        bound = "" if limit is None else f" LIMIT {int(limit)}"
        query = f"SELECT size, {column} FROM {table} WHERE size > ? ORDER BY size {order}{bound}"
        with self._cursor() as cur:
            cur.execute(self._sql(query), (above,))
            return [(int(size), value) for size, value in cur.fetchall()]

    def _save_once(self, table: str, column: str, size: int, value: object) -> None:
        """Keep ``value`` for tree size ``size`` in ``table``, unless one is kept already (the first stays)."""
        with self._cursor(write=True) as cur:
            cur.execute(self._sql(f"INSERT INTO {table} (size, {column}) VALUES (?, ?) ON CONFLICT (size) DO NOTHING"),
                        (size, value))  # fmt: skip

    def checkpoints(self, *, above: int = -1, newest_first: bool = False,
                    limit: int | None = None) -> list[tuple[int, str]]:  # fmt: skip
        return [(size, str(note)) for size, note in
                self._by_size("sifa_tree_checkpoints", "note", above, newest_first, limit)]  # fmt: skip

    def find(self, label: str, *, last: bool = False) -> list[int]:
        order = "DESC LIMIT 1" if last else "ASC"
        with self._cursor() as cur:
            cur.execute(self._sql(f"SELECT leaf FROM sifa_tree_labels WHERE label = ? ORDER BY leaf {order}"), (label,))
            return [int(r[0]) for r in cur.fetchall()]

    def labels_at(self, index: int) -> list[str]:
        with self._cursor() as cur:
            cur.execute(self._sql("SELECT label FROM sifa_tree_labels WHERE leaf = ? ORDER BY label"), (index,))
            return [str(r[0]) for r in cur.fetchall()]

    def save_checkpoint(self, size: int, note: str) -> None:
        with self._cursor(write=True) as cur:
            cur.execute(self._sql(UPSERT_CHECKPOINT), (size, note))

    def checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        with self._cursor() as cur:
            return select_checkpoint(cur, self._sql, size)

    def save_timestamp(self, size: int, token: bytes) -> None:
        self._save_once("sifa_tree_timestamps", "token", size, token)

    def timestamps(self, *, above: int = -1, newest_first: bool = False,
                   limit: int | None = None) -> list[tuple[int, bytes]]:  # fmt: skip
        return [(size, bytes(token)) for size, token in
                self._by_size("sifa_tree_timestamps", "token", above, newest_first, limit)]  # fmt: skip

    def save_anchor(self, size: int, record: str) -> None:
        self._save_once("sifa_tree_anchors", "record", size, record)

    def anchors(self, *, above: int = -1, newest_first: bool = False,
                limit: int | None = None) -> list[tuple[int, str]]:  # fmt: skip
        return [(size, str(record)) for size, record in
                self._by_size("sifa_tree_anchors", "record", above, newest_first, limit)]  # fmt: skip

    @abstractmethod
    def _sequencer_alive(self) -> bool:
        """Whether some process holds the sequencer lock (without taking it for long)."""

    def sequencer_status(self) -> SequencerStatus:
        with self._cursor() as cur:
            cur.execute(self._sql("SELECT checkpointed_at, stall FROM sifa_sequencer WHERE id = 1"))
            at, stall = cur.fetchone()
        return SequencerStatus(self._sequencer_alive(), None if at is None else float(at),
                               None if stall is None else Stall.from_json(stall))  # fmt: skip

    def record_stall(self, stall: Stall | None) -> None:
        with self._cursor(write=True) as cur:
            cur.execute(self._sql("UPDATE sifa_sequencer SET stall = ? WHERE id = 1"),
                        (None if stall is None else stall.to_json(),))  # fmt: skip
