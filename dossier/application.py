"""The dossier application: commands that check, record events, and save atomically.

Persistence is whatever eventsourcing module the environment names: SQLite by
default, PostgreSQL in production; events are encrypted at rest (AES-GCM via
``cryptography``) so party data in them stays private. Blobs go to the blob
store the node was given; only their SHA-256 and size enter events.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import MutableOrImmutableAggregate, Snapshot
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, PersistenceError

from dossier import fields
from dossier.catalogue import pdf_info, place
from dossier.courts import CASE_TYPES, CourtRegistry, case_number
from dossier.domain import PARTY_ROLES, Dossier, document_fields, party_list
from dossier.envelope import check_fits
from dossier.errors import (
    DossierConflictError,
    DossierExistsError,
    DossierNotFoundError,
    EventStoreUnavailableError,
    InvalidDossierInputError,
)
from storage.blobstore import BlobStore, Source

SOURCES = ("court", "party", "lawyer")
# Recently used dossiers stay in memory and are fast-forwarded from the store on each read (so
# several workers stay consistent); a snapshot every 100 events bounds a cold read's replay.
CACHE = {"AGGREGATE_CACHE_MAXSIZE": "200", "AGGREGATE_CACHE_FASTFORWARD": "y"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")
P = ParamSpec("P")
# Dossiers kept ready for writing: at most HOT of them, HOT_EVENTS events in all (~500 bytes of state
# each: ~50 MB). Past that, the least recently written is read again on its next command.
HOT, HOT_EVENTS = 1000, 100_000
# Events between a dossier's snapshots while it is small: what a cold read replays at most (500 take
# ~10 ms here). A snapshot costs in proportion to the dossier, so most dossiers never need one.
SNAPSHOT_EVERY = 500
SNAPSHOT_BUDGET = 0.005  # seconds of snapshots the committer takes between two batches
log = logging.getLogger(__name__)
Guard = Callable[[Dossier], None]


@dataclass
class Pending(Generic[T]):
    """A checked command, ready to run on its dossier: ``fn`` records events and gives the result."""

    dossier: UUID | str
    fn: Callable[[Dossier], T]
    guard: Guard | None = None


@dataclass
class _Command:
    ident: UUID
    fn: Callable[[Dossier], Any]
    future: Future[Any] = field(default_factory=Future)
    result: Any = None
    error: BaseException | None = None
    done: bool = False


class _Bound(Generic[P, T]):
    def __init__(self, app: DossierApp, build: Callable[Concatenate[DossierApp, P], Pending[T]]) -> None:
        self.app, self.build = app, build

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the command and wait until it is durably recorded."""
        result: T = self.future(*args, **kwargs).result()
        return result

    def future(self, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Check the command now (bad input raises here); record it with the next group commit."""
        return self.app.enqueue(self.build(self.app, *args, **kwargs))


class command(Generic[P, T]):
    """A command method: ``app.x(...)`` records and returns; ``app.x.future(...)`` returns a future
    (for event loops, which must not block)."""

    def __init__(self, build: Callable[Concatenate[DossierApp, P], Pending[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    def __get__(self, app: DossierApp, owner: type | None = None) -> _Bound[P, T]:
        return _Bound(app, self.build)


AES_TOPIC = "eventsourcing.cryptography:AESCipher"


def sqlite_env(path: str, cipher_key: str, cipher_topic: str = AES_TOPIC) -> dict[str, str]:
    """Environment for the embedded default: events in one SQLite file, encrypted (AES-GCM, or
    ``dossier.cipher:SM4Cipher`` on a GM node)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "10",
        "CIPHER_TOPIC": cipher_topic,
        "CIPHER_KEY": cipher_key,
        **CACHE,
    }


def postgres_env(host: str, port: int, user: str, dbname: str, password: str, cipher_key: str,
                 cipher_topic: str = AES_TOPIC) -> dict[str, str]:  # fmt: skip
    """Environment for production: events in PostgreSQL, encrypted (as ``sqlite_env``)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": user,
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_PASSWORD": password,
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "CIPHER_TOPIC": cipher_topic,
        "CIPHER_KEY": cipher_key,
        **CACHE,
    }


def snapshot_step(version: int) -> int:
    """Events between snapshots of a dossier at ``version``: SNAPSHOT_EVERY while it is small,
    doubling as it grows (never more than a quarter of its events). A snapshot costs in proportion
    to the dossier, so a fixed step made writing to a large dossier ever slower; this way it costs
    a bounded share per event, and a cold read replays at most that quarter."""
    step = SNAPSHOT_EVERY
    while step * 8 <= version:
        step *= 2
    return step


def _ident(dossier: UUID | str) -> UUID:
    """A dossier's id; anything that is not one names no dossier."""
    try:
        return dossier if isinstance(dossier, UUID) else UUID(str(dossier))
    except ValueError:
        raise DossierNotFoundError(f"no dossier {dossier}") from None


def _sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidDossierInputError(f"{what} must be a SHA-256 in lower-case hex")
    return value


class DossierApp(Application[UUID]):
    """Open, fill, transfer, archive and read case dossiers."""

    name = "sifa"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {Dossier: SNAPSHOT_EVERY}

    def __init__(self, env: Mapping[str, str], blobs: BlobStore, courts: CourtRegistry, court: str) -> None:
        super().__init__(env)
        self.blobs, self.courts, self.court = blobs, courts, court
        self._queue: list[_Command] = []
        self._wake = threading.Condition()
        self._committer: threading.Thread | None = None
        self._closing = False
        self._hot: dict[UUID, Dossier] = {}  # touched only by the committer thread
        self._due: dict[UUID, Dossier] = {}  # dossiers due a snapshot (committer thread only)

    def _record_all(self, aggregates: tuple[Dossier, ...]) -> list[Dossier]:
        """``Application.save`` for dossiers: the same steps, without its per-object protocol
        checks (``isinstance`` against a runtime Protocol is slow, and a batch saves many) and
        without the snapshots: it returns the dossiers that are due one."""
        batch = ProcessingEvent[UUID]()
        for d in aggregates:
            batch.events.extend(d.collect_events())
            batch.aggregates[d.id] = d
        recordings = self._record(batch)
        self._notify(recordings)
        due = {e.originator_id for e in batch.events if e.originator_version % snapshot_step(e.originator_version) == 0}
        return [d for d in aggregates if d.id in due]

    def _snapshot(self, dossiers: Iterable[Dossier]) -> None:
        """Snapshot the dossiers in hand, as recorded (eventsourcing's default rebuilds each from
        its last snapshot first). A snapshot only speeds up reading: one that fails is logged, and
        the events it would have summed up stay the record."""
        if self.snapshots is None:
            return
        for d in dossiers:
            try:
                self.snapshots.put([Snapshot.take(d)])
            except Exception:
                log.warning("snapshot of dossier %s at version %d failed; reads replay its events", d.id, d.version,
                            exc_info=True)  # fmt: skip

    def get(self, dossier: UUID | str, *, copy: bool = True) -> Dossier:
        """The dossier as stored. ``copy=False``: no copy of its state (which grows with its
        history) — only for a glance at id, court, version or archived, never to iterate or change."""
        try:
            found: Dossier = self.repository.get(_ident(dossier), deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            raise DossierNotFoundError(f"no dossier {dossier}") from None
        except (OperationalError, InterfaceError) as exc:
            raise EventStoreUnavailableError("the event store does not answer; nothing was changed") from exc
        return found

    def _save(self, *aggregates: Dossier, snapshot: bool = True) -> None:
        """Record the dossiers' new events in one transaction; ``snapshot=False``: the dossiers due a
        snapshot wait in ``_due`` (the committer takes them after answering its callers)."""
        try:
            due = self._record_all(aggregates)
        except (OperationalError, InterfaceError) as exc:
            raise EventStoreUnavailableError("the event store does not answer; nothing was recorded") from exc
        except IntegrityError as exc:
            if len(aggregates) == 1 and aggregates[0].version == 1:
                raise DossierExistsError(f"case {aggregates[0].case_number} already has a dossier") from exc
            raise DossierConflictError("the dossier changed meanwhile; read it again and retry") from exc
        if snapshot:
            self._snapshot(due)
        else:
            self._due.update((d.id, d) for d in due)

    # Group commit. Commands queue for one committer thread, which applies every queued command to
    # its dossier (kept in memory between batches) and saves them all in one transaction, so N
    # callers share one fsync. Each caller still gets its own result or its own error: a command
    # that fails is left out, and a conflict with another writer re-runs the batch one by one.
    def enqueue(self, pending: Pending[T]) -> Future[T]:
        ident = _ident(pending.dossier)
        fn, guard = pending.fn, pending.guard

        def run(d: Dossier) -> T:
            if guard is not None:
                guard(d)
            return fn(d)

        cmd = _Command(ident, run)
        with self._wake:
            if self._closing:
                raise EventStoreUnavailableError("the node is shutting down; nothing was recorded")
            self._queue.append(cmd)
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_loop, name="sifa-commit", daemon=True)
                self._committer.start()
            self._wake.notify()
        return cmd.future

    def _commit_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._due and not self._closing:
                    self._wake.wait()
                if not self._queue and self._closing:
                    return  # snapshots still due are only a speed-up; the events are all recorded
                batch, self._queue = self._queue, []
            if batch:
                self._commit(batch)
                self._trim()
                for cmd in batch:
                    if cmd.error is not None:
                        cmd.future.set_exception(cmd.error)
                    else:
                        cmd.future.set_result(cmd.result)
            self._snapshot_some()

    def _snapshot_some(self) -> None:
        """Take due snapshots for at most SNAPSHOT_BUDGET seconds, after the batch's callers have
        their answers. A snapshot costs in proportion to its dossier, and dossiers written at the
        same pace come due together: taken all at once, they stalled every caller for as long.
        A dossier is snapshotted only while it is the one held for writing, every event of it
        recorded (a failed save forgets it; a snapshot must never hold an unrecorded event)."""
        deadline = time.monotonic() + SNAPSHOT_BUDGET
        while self._due and time.monotonic() < deadline:
            ident, d = next(iter(self._due.items()))
            del self._due[ident]
            if self._hot.get(ident) is d:
                self._snapshot([d])

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
            committer = self._committer
        if committer is not None:
            committer.join()
        super().close()

    def _versioned(self, dossier: UUID | str, record: Callable[[Dossier], None], guard: Guard | None) -> Pending[int]:
        """A command that records events; its result is the dossier's new version."""

        def run(d: Dossier) -> int:
            record(d)
            return d.version

        return Pending(dossier, run, guard)

    def _commit(self, batch: list[_Command], *, retry: bool = True) -> None:
        held: dict[UUID, tuple[Dossier, list[_Command]]] = {}
        try:
            for cmd in batch:
                self._apply(cmd, held)
            ready = [(d, cmds) for d, cmds in held.values() if cmds]
            try:
                if ready:
                    self._save(*(d for d, _ in ready), snapshot=False)
            except DossierConflictError:  # another writer got there first: read afresh, one by one
                self._forget(held)
                if not retry:
                    raise
                for _, cmds in ready:
                    for cmd in cmds:
                        cmd.result, cmd.done = None, False
                        self._commit([cmd], retry=False)
        except Exception as exc:  # nothing of this batch was recorded
            self._forget(held)
            for cmd in batch:
                if not cmd.done and cmd.error is None:
                    cmd.error = exc
        finally:
            for cmd in batch:
                cmd.done = True

    def _forget(self, held: Mapping[UUID, object]) -> None:
        for ident in held:
            self._hot.pop(ident, None)

    def _writable(self, ident: UUID) -> Dossier:
        """The dossier commands write to: kept between batches (no copy, no re-read), only ever
        touched under the commit lock, forgotten whenever a save fails."""
        d = self._hot.pop(ident, None)
        if d is None:
            d = self.get(ident)
        self._hot[ident] = d
        return d

    def _trim(self) -> None:
        """Keep the dossiers held for writing within HOT dossiers and HOT_EVENTS events (their
        state grows with their history), forgetting the least recently written first."""
        total = sum(d.version for d in self._hot.values())
        while self._hot and (len(self._hot) > HOT or total > HOT_EVENTS):
            total -= self._hot.pop(next(iter(self._hot))).version

    def _apply(self, cmd: _Command, held: dict[UUID, tuple[Dossier, list[_Command]]]) -> None:
        if cmd.ident not in held:
            try:
                held[cmd.ident] = (self._writable(cmd.ident), [])
            except DossierNotFoundError as exc:
                cmd.error = exc
                return
        d, applied = held[cmd.ident]
        version, before = d.version, len(d.pending_events)
        try:
            cmd.result = cmd.fn(d)
            check_fits(d.pending_events[before:])  # a leaf the log cannot hold would stop it: refuse now
        except Exception as exc:
            cmd.error = exc
            if d.version != version:  # it failed half-way: rebuild the dossier without it
                self._hot.pop(cmd.ident, None)
                held[cmd.ident] = (self._writable(cmd.ident), [])
                for earlier in applied:
                    self._apply(earlier, held)
            return
        applied.append(cmd)

    def open_dossier(self, *, case_number_text: str, case_type: str, parties: list[dict[str, Any]],
                     actor: str, role: str) -> UUID:  # fmt: skip
        number = case_number(fields.text(case_number_text, "case number"))
        d = Dossier(court=self.court, case_number=number, case_type=fields.choice(case_type, "case type", CASE_TYPES),
                    parties=party_list(parties, most=fields.MAX_PARTIES), **fields.who(actor, role))  # fmt: skip
        check_fits(d.pending_events)
        self._save(d)
        return d.id

    def import_dossier(self, d: Dossier) -> None:
        """Record a dossier built whole elsewhere (a verified package from another court), in one save."""
        try:
            self.get(d.id, copy=False)
        except DossierNotFoundError:
            pass
        else:
            raise DossierExistsError(f"this node already holds dossier {d.id} ({d.case_number}); nothing was imported")
        check_fits(d.pending_events)
        self._save(d)

    def upload(self, dossier: UUID | str, stream: Source, *, name: str, media_type: str, source: str,
               doc_type: str | None, actor: str, role: str, expected_sha256: str | None = None,
               guard: Guard | None = None) -> dict[str, Any]:  # fmt: skip
        """Store the file, record it and place it in the catalogue, in one save."""
        d = self.get(dossier, copy=False)  # a first check, before the bytes are stored; the command checks again
        if guard is not None:
            guard(d)
        d._own()  # a received dossier takes nothing: refused before the bytes are stored
        doc = document_fields(name, media_type, doc_type)  # all checked before the bytes are stored
        name, media_type = doc["name"], doc["media_type"]
        title = fields.text(name.rsplit(".", 1)[0] or name, "title")  # " .txt" has no title: refused here too
        source = fields.choice(source, "source", SOURCES)
        acting = fields.who(actor, role)
        info = self.blobs.put(stream, expected_sha256)
        pdf = pdf_info(self.blobs.read(info.sha256)) if media_type == "application/pdf" else None
        pages = pdf.pages if pdf else None
        # A lawyer's or party's upload goes to the 正卷, whatever it declares or is named.
        spot = place(doc["doc_type"], name, pdf.text if pdf else "",
                     court=source == "court" and acting["role"] not in PARTY_ROLES)  # fmt: skip

        def record(d: Dossier) -> dict[str, Any]:
            document_id = uuid.uuid4().hex
            d.upload(document_id=document_id, sha256=info.sha256, size=info.size, pages=pages, source=source,
                     **doc, **acting)  # fmt: skip
            d.catalogue_document(document_id=document_id, volume=spot.volume, category=spot.category,
                                 order=spot.order, title=title, pages=pages, auto=True,
                                 **acting)  # fmt: skip
            return {"document_id": document_id, "sha256": info.sha256, "size": info.size, "pages": pages,
                    "category": spot.category, "placed_by": spot.reason, "version": d.version}  # fmt: skip

        return self.enqueue(Pending(d.id, record, guard)).result()

    @command
    def catalogue(self, /, dossier: UUID | str, *, guard: Guard | None = None, **kw: Any) -> Pending[int]:
        """A manual catalogue entry (override of the automatic one)."""
        return self._versioned(dossier, lambda d: d.catalogue_document(auto=False, **kw), guard)

    @command
    def withdraw(self, /, dossier: UUID | str, *, guard: Guard | None = None, **kw: Any) -> Pending[int]:
        return self._versioned(dossier, lambda d: d.withdraw(**kw), guard)

    @command
    def submit_evidence(self, dossier: UUID | str, *, sha256: str, size: int, name: str,
                        submitter: dict[str, Any], description: str, actor: str, role: str,
                        guard: Guard | None = None) -> Pending[int]:  # fmt: skip
        checked = {"sha256": _sha(sha256, "sha256"), "size": fields.count(size, "size", most=fields.MAX_SIZE),
                   "name": fields.text(name, "evidence name"), "submitter": submitter,
                   "description": fields.text(description, "description", required=False, multiline=True),
                   "actor": actor, "role": role}  # fmt: skip
        return self._versioned(dossier, lambda d: d.submit_evidence(evidence_id=uuid.uuid4().hex, **checked), guard)

    @command
    def record_service(self, dossier: UUID | str, *, document_id: str, recipient: dict[str, Any], channel: str,
                       sent_at: str, delivered_at: str | None, read_at: str | None,
                       receipt_sha256: str | None, actor: str, role: str,
                       guard: Guard | None = None) -> Pending[int]:  # fmt: skip
        checked = {"document_id": document_id, "recipient": recipient, "channel": fields.text(channel, "channel"),
                   "sent_at": fields.moment(sent_at, "sent_at"),
                   "delivered_at": fields.optional_moment(delivered_at, "delivered_at"),
                   "read_at": fields.optional_moment(read_at, "read_at"),
                   "receipt_sha256": _sha(receipt_sha256, "receipt_sha256") if receipt_sha256 is not None else None,
                   "actor": actor, "role": role}  # fmt: skip
        return self._versioned(dossier, lambda d: d.record_service(**checked), guard)

    @command
    def register_contract(self, dossier: UUID | str, *, contract_sha256: str, parties: list[dict[str, Any]],
                          signed_at: str, actor: str, role: str,
                          guard: Guard | None = None) -> Pending[int]:  # fmt: skip
        checked = {"contract_sha256": _sha(contract_sha256, "contract_sha256"), "parties": parties,
                   "signed_at": fields.moment(signed_at, "signed_at"), "actor": actor, "role": role}  # fmt: skip
        return self._versioned(dossier, lambda d: d.register_contract(**checked), guard)

    @command
    def transfer(self, dossier: UUID | str, *, to_court: str, kind: str, reason: str, actor: str, role: str,
                 guard: Guard | None = None) -> Pending[int]:  # fmt: skip
        target = self.courts.get(to_court)  # a real court, or UnknownCourtError
        return self._versioned(dossier, lambda d: d.transfer(to_court=target.code, kind=kind, reason=reason,
                                                             actor=actor, role=role), guard)  # fmt: skip

    @command
    def archive(self, dossier: UUID | str, *, retention: str, package_sha256: str, actor: str, role: str,
                guard: Guard | None = None) -> Pending[int]:  # fmt: skip
        package = _sha(package_sha256, "package_sha256")
        return self._versioned(dossier, lambda d: d.archive(retention=retention, package_sha256=package, actor=actor,
                                                            role=role), guard)  # fmt: skip

    @command
    def retrieve(self, dossier: UUID | str, *, by_court: str, by: str, reason: str, actor: str, role: str,
                 document_id: str | None = None, guard: Guard | None = None) -> Pending[Dossier]:  # fmt: skip
        """Read a dossier's content; the read is itself an event (全程留痕). ``document_id``: the one
        document read (a download); the event is then court-only when that document is."""
        read_by = {"by_court": fields.text(by_court, "court"), "by": fields.text(by, "reader"),
                   "reason": fields.text(reason, "reason", multiline=True), **fields.who(actor, role)}  # fmt: skip
        if document_id is not None:
            read_by["document_id"] = fields.text(document_id, "document id")

        def read(d: Dossier) -> Dossier:
            d.retrieved(**read_by)
            seen = deepcopy(d)  # read after the commit, while later commands change d
            seen.collect_events()
            return seen

        return Pending(dossier, read, guard)


def events_key_opens(env: Mapping[str, str], name: str = "") -> bool:
    """Whether the environment's cipher key decrypts the events stored there: the first and the latest
    are tried, and the key is judged wrong only when neither decrypts (one tampered row is ``sifa
    audit``'s finding, not a wrong key). An empty store, or one that cannot be read: True (the node's own
    opening reports that). ``name``: the application's (PostgreSQL names its tables after it); DossierApp's
    by default."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    # Read only: never create the tables (sequencers starting at once raced on CREATE TABLE in PostgreSQL).
    factory = InfrastructureFactory.construct(Environment(name or DossierApp.name, {**env, "CREATE_TABLE": "no"}))
    try:
        cipher = factory.cipher()
        recorder = factory.application_recorder()
        try:
            latest = recorder.max_notification_id()
            if cipher is None or not latest:
                return True
            sampled = [*recorder.select_notifications(start=None, limit=1),
                       *recorder.select_notifications(start=latest, limit=1)]  # fmt: skip
        except (PersistenceError, sqlite3.Error):  # no tables yet, or the store is down: opening it says so
            return True
        for note in sampled:
            try:
                cipher.decrypt(note.state)
            except ValueError:
                continue
            return True
        return not sampled
    finally:
        factory.close()
