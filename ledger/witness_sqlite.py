"""A witness's state in one SQLite file: the latest cosigned checkpoint per log, and forks seen."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ledger.witness import Seen, WitnessStateError

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sifa_witness_latest (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " root BLOB NOT NULL, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sifa_witness_forks (id INTEGER PRIMARY KEY, origin TEXT NOT NULL,"
    " seen TEXT NOT NULL, presented TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL)",
)


class SQLiteWitnessState:
    def __init__(self, path: str | Path) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # SPEC: "MUST persist the new checkpoint before responding"
            self._db.execute("PRAGMA busy_timeout=10000")
            for statement in SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise WitnessStateError(f"cannot open the witness state at {path}: {exc}") from exc
        self._lock = threading.Lock()

    def latest(self, origin: str) -> Seen | None:
        with self._lock:
            row = self._db.execute("SELECT size, root, note FROM sifa_witness_latest WHERE origin = ?",
                                   (origin,)).fetchone()  # fmt: skip
        return Seen(int(row[0]), bytes(row[1]), str(row[2])) if row else None

    def advance(self, origin: str, old_size: int, new: Seen) -> Seen | None:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")  # the check and the write are one step
            try:
                row = cur.execute("SELECT size, root, note FROM sifa_witness_latest WHERE origin = ?",
                                  (origin,)).fetchone()  # fmt: skip
                if (row[0] if row else 0) != old_size:
                    cur.execute("ROLLBACK")
                    return Seen(int(row[0]), bytes(row[1]), str(row[2])) if row else Seen(0, b"", "")
                cur.execute("INSERT INTO sifa_witness_latest (origin, size, root, note) VALUES (?, ?, ?, ?)"
                            " ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root,"
                            " note = excluded.note", (origin, new.size, new.root_hash, new.note))  # fmt: skip
                cur.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        return None

    def record_fork(self, origin: str, seen: str, presented: str, reason: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO sifa_witness_forks (origin, seen, presented, reason, at) VALUES"
                             " (?, ?, ?, ?, ?)", (origin, seen, presented, reason, time.time()))  # fmt: skip

    def forks(self, origin: str | None = None) -> list[tuple[str, str, str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT origin, seen, presented, reason FROM sifa_witness_forks WHERE ? IS NULL"
                                    " OR origin = ? ORDER BY id", (origin, origin)).fetchall()  # fmt: skip
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
