"""The dossier index: finding dossiers by case number, party name, status and date.

Events are encrypted at rest, so a search never reads plaintext: the index holds, for each dossier,
keyed hashes (HMAC-SHA256 under a key derived from the events' cipher key) of its case number and
of each party's name, its case number encrypted (AES-GCM, under another derived key, to show in a
list), and what is not personal: court holding it, case type, status, and when it was opened and
last changed. A search looks up the keyed hash of what was typed (the case number normalised as
when opened, a name in NFC without spaces at either end): exact matches only, never substrings.

It is a projection of the event store's notification log: each query first reads the
notifications it has not seen (only the events that change what it holds: Opened, Transferred,
Received, Archived, Closed), so every worker and node sharing one event store agrees. It lives
in its own SQLite file (a cache: deleted, it is built again from the events).

Status: ``open``; ``transferred`` once a transfer (上诉, 移送, 再审) is recorded; ``received`` for
another court's dossier received here; ``archived``; ``closed`` when a ``Closed`` event is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import Application

from dossier.courts import normal_case_number
from dossier.errors import InvalidDossierInputError
from dossier.fields import utc

STATUSES = ("open", "transferred", "received", "archived", "closed")
# Events that change what the index holds, by the last part of their topic.
WATCHED = ("Opened", "Transferred", "Received", "Archived", "Closed")
BATCH = 500
MAX_LIMIT = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (
    id TEXT PRIMARY KEY, holder TEXT NOT NULL, number_mac BLOB NOT NULL, number_enc BLOB NOT NULL,
    case_type TEXT NOT NULL, status TEXT NOT NULL, opened_at TEXT NOT NULL, changed_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS by_opened ON dossiers (holder, opened_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS by_status ON dossiers (holder, status, opened_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS by_number ON dossiers (number_mac);
CREATE TABLE IF NOT EXISTS parties (id TEXT NOT NULL, name_mac BLOB NOT NULL, PRIMARY KEY (name_mac, id));
CREATE TABLE IF NOT EXISTS position (one INTEGER PRIMARY KEY CHECK (one = 1), last INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    """One dossier as a list shows it."""

    id: str
    case_number: str
    case_type: str
    status: str
    holder: str
    opened_at: str
    changed_at: str


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True)
class Query:
    """What a list asks for; every field optional. ``within``: only these dossier ids (a lawyer's)."""

    holder: str
    case_number: str | None = None
    party: str | None = None
    status: str | None = None
    opened_from: str | None = None  # UTC, ``2026-11-22T00:00:00.000000Z`` form: inclusive
    opened_to: str | None = None  # exclusive
    within: Sequence[str] | None = None
    cursor: str | None = None
    limit: int = 50


def _name(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


class DossierIndex:
    """The index of one node's dossiers, in the SQLite file ``path``, keyed from ``secret``."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self.path = path
        self._mac_key = hmac.new(secret, b"sifa dossier index: search", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(secret, b"sifa dossier index: case numbers", hashlib.sha256).digest())
        self._cursor_key = hmac.new(secret, b"sifa dossier index: cursors", hashlib.sha256).digest()
        self._lock = threading.Lock()
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as db:
            yield db

    def mac(self, text: str) -> bytes:
        return hmac.new(self._mac_key, text.encode(), hashlib.sha256).digest()

    def _seal(self, number: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, number.encode(), b"case number")

    def _open(self, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], b"case number").decode()

    def catch_up(self, app: Application[Any]) -> int:
        """Read the notifications not seen yet into the index; how many events changed it."""
        from dossier.domain import Dossier  # the events' classes name their topics

        topics = [f"{Dossier.__module__}:{Dossier.__qualname__}.{name}" for name in WATCHED]
        changed = 0
        with self._lock, self._db() as db:
            while True:
                db.execute("BEGIN IMMEDIATE")  # one catching-up writer at a time, across processes too
                try:
                    row = db.execute("SELECT last FROM position").fetchone()
                    last = row[0] if row else 0
                    # Up to the newest notification now: the events between that change nothing here
                    # (reads, uploads) are passed over once, not scanned again on every query.
                    top = app.recorder.max_notification_id() or 0
                    notes = app.recorder.select_notifications(start=last, limit=BATCH, stop=top, topics=topics,
                                                              inclusive_of_start=False)  # fmt: skip
                    for note in notes:
                        self._apply(db, app.mapper.to_domain_event(note))
                    seen = notes[-1].id if len(notes) == BATCH else top
                    if seen > last:
                        db.execute("INSERT INTO position (one, last) VALUES (1, ?) "
                                   "ON CONFLICT (one) DO UPDATE SET last = excluded.last", (seen,))  # fmt: skip
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                changed += len(notes)
                if len(notes) < BATCH:
                    return changed

    def _apply(self, db: sqlite3.Connection, e: Any) -> None:
        kind = type(e).__name__
        ident, when = str(e.originator_id), utc(e.timestamp)
        if kind == "Opened":
            number = str(e.case_number)
            db.execute("INSERT OR IGNORE INTO dossiers VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
                       (ident, e.court, self.mac(number), self._seal(number), e.case_type, when, when))  # fmt: skip
            names = [(ident, self.mac(_name(p["name"]))) for p in e.parties if p.get("name")]
            db.executemany("INSERT OR IGNORE INTO parties VALUES (?, ?)", names)
            return
        status = {"Transferred": "transferred", "Archived": "archived", "Closed": "closed", "Received": "received"}
        if kind == "Received":
            db.execute("UPDATE dossiers SET holder = ?, status = 'received', changed_at = ? WHERE id = ?",
                       (e.by_court, when, ident))  # fmt: skip
        else:
            db.execute("UPDATE dossiers SET status = ?, changed_at = ? WHERE id = ?", (status[kind], when, ident))

    def add(self, rows: Sequence[tuple[str, str, str, str, Sequence[str], str]]) -> None:
        """Index dossiers directly: (id, holder, case number, case type, party names, opened_at). For the
        benchmark, which fills an index of 100,000 dossiers without writing their events."""
        with self._db() as db:
            db.execute("BEGIN")
            for ident, holder, number, case_type, names, opened in rows:
                row = (ident, holder, self.mac(number), self._seal(number), case_type, opened, opened)
                db.execute("INSERT INTO dossiers VALUES (?, ?, ?, ?, ?, 'open', ?, ?)", row)
                macs = [(ident, self.mac(_name(n))) for n in names]
                db.executemany("INSERT OR IGNORE INTO parties VALUES (?, ?)", macs)
            db.execute("COMMIT")

    def search(self, q: Query) -> Page:
        """One page of the dossiers ``q`` asks for, newest opened first. Raises InvalidDossierInputError."""
        if not 1 <= q.limit <= MAX_LIMIT:
            raise InvalidDossierInputError(f"limit is from 1 to {MAX_LIMIT}")
        where, args = ["d.holder = ?"], list[object]([q.holder])
        if q.case_number is not None:
            where.append("d.number_mac = ?")
            args.append(self.mac(normal_case_number(q.case_number)))
        if q.party is not None:
            where.append("d.id IN (SELECT id FROM parties WHERE name_mac = ?)")
            args.append(self.mac(_name(q.party)))
        if q.status is not None:
            if q.status not in STATUSES:
                raise InvalidDossierInputError(f"status is one of {', '.join(STATUSES)}")
            where.append("d.status = ?")
            args.append(q.status)
        if q.opened_from is not None:
            where.append("d.opened_at >= ?")
            args.append(q.opened_from)
        if q.opened_to is not None:
            where.append("d.opened_at < ?")
            args.append(q.opened_to)
        if q.within is not None:
            if not q.within:
                return Page([], None)
            where.append(f"d.id IN ({', '.join('?' * len(q.within))})")
            args.extend(q.within)
        if q.cursor is not None:
            at, ident = self._cursor(q.cursor)
            where.append("(d.opened_at < ? OR (d.opened_at = ? AND d.id < ?))")
            args.extend([at, at, ident])
        if q.case_number is not None or q.party is not None or q.within is not None:
            # A few rows by key: look them up by it, not by walking the court's dossiers newest first.
            where[0] = "+d.holder = ?"
        sql = (f"SELECT id, number_enc, case_type, status, holder, opened_at, changed_at FROM dossiers d "
               f"WHERE {' AND '.join(where)} ORDER BY d.opened_at DESC, d.id DESC LIMIT ?")  # fmt: skip
        with self._db() as db:
            rows = db.execute(sql, [*args, q.limit + 1]).fetchall()
        entries = [Entry(r[0], self._open(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows[: q.limit]]
        more = len(rows) > q.limit
        return Page(entries, self._make_cursor(entries[-1]) if more else None)

    def _make_cursor(self, last: Entry) -> str:
        """Where the next page starts, authenticated: a cursor is only ever one this index gave out."""
        raw = json.dumps([last.opened_at, last.id], separators=(",", ":")).encode()
        tag = hmac.new(self._cursor_key, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(tag + raw).decode().rstrip("=")

    def _cursor(self, text: str) -> tuple[str, str]:
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            tag, raw = sealed[:16], sealed[16:]
            if not hmac.compare_digest(tag, hmac.new(self._cursor_key, raw, hashlib.sha256).digest()[:16]):
                raise ValueError
            at, ident = json.loads(raw)
            if not isinstance(at, str) or not isinstance(ident, str):
                raise ValueError
        except (ValueError, TypeError, UnicodeDecodeError):
            raise InvalidCursorError("the cursor is not one this list gave out") from None
        return at, ident


class InvalidCursorError(InvalidDossierInputError):
    code = "invalid_cursor"
