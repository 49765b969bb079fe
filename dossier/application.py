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
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import MutableOrImmutableAggregate, Snapshot
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, PersistenceError

from dossier import fields
from dossier.catalogue import PdfCopy, place
from dossier.courts import CASE_TYPES, CourtRegistry, normal_case_number
from dossier.domain import PARTY_ROLES, Dossier, document_fields, party_list
from dossier.envelope import check_fits
from dossier.errors import (
    DossierConflictError,
    DossierExistsError,
    DossierNotFoundError,
    EventStoreUnavailableError,
    InvalidDossierInputError,
)
from dossier.group_commit import GroupCommit, Stored
from dossier.hot import HotSet
from dossier.snapshots import SNAPSHOT_EVERY, DueSnapshots, snapshot_step
from storage.blobstore import BlobStore, Source

SOURCES = ("court", "party", "lawyer")
# Recently used dossiers stay in memory and are fast-forwarded from the store on each read (so
# several workers stay consistent); a snapshot every 100 events bounds a cold read's replay.
CACHE = {"AGGREGATE_CACHE_MAXSIZE": "200", "AGGREGATE_CACHE_FASTFORWARD": "y"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")
P = ParamSpec("P")
# Dossiers kept ready for writing: at most HOT of them, HOT_EVENTS events in all (~500 bytes of state
# each: ~50 MB). Past that, one is forgotten (dossier/hot.py) and read again on its next command.
HOT, HOT_EVENTS = 1000, 100_000
log = logging.getLogger(__name__)
Guard = Callable[[Dossier], None]


@dataclass
class Pending(Generic[T]):
    """A checked command, ready to run on its dossier: ``fn`` records events and gives the result."""

    dossier: UUID | str
    fn: Callable[[Dossier], T]
    guard: Guard | None = None


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
        self._hot: HotSet[Dossier] = HotSet(HOT, HOT_EVENTS)  # touched only by the committer thread
        self._due = DueSnapshots(self._snapshot, self._hot.peek)
        self._commits: GroupCommit[Dossier] = GroupCommit(
            lambda ident: self.get(ident), self._save_batch, self._hot, check=self._stored, refresh=self._catch_up,
            background=self._due.take_some)  # fmt: skip

    def _record_all(self, aggregates: Sequence[Dossier]) -> list[Dossier]:
        """``Application.save`` for dossiers, through the event store's public ``put``: the same
        steps, without its per-object protocol checks (``isinstance`` against a runtime Protocol is
        slow, and a batch saves many) and without the snapshots: it returns the dossiers that are
        due one. (``save``'s ``_notify`` hook is a no-op this application does not override.) The events
        stay pending on the dossiers until they are recorded: a batch that conflicts saves its other
        dossiers again as they are (dossier/group_commit.py)."""
        self.events.put([e for d in aggregates for e in d.pending_events])
        return self._recorded(aggregates)

    def _recorded(self, aggregates: Sequence[Dossier]) -> list[Dossier]:
        """After ``aggregates``' pending events are stored: what ``_record_all`` does once they are."""
        events = [e for d in aggregates for e in d.pending_events]
        for d in aggregates:
            d.collect_events()
        repository = self.repository
        if repository.cache is not None and not repository.fastforward:  # as ``Application._record`` does
            for d in aggregates:
                repository.cache.put(d.id, d)
        due = {e.originator_id for e in events if e.originator_version % snapshot_step(e.originator_version) == 0}
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
            # A direct save (opening, import) whose answer was lost: the driver's retry met its own rows.
            # (The group commit asks this itself, dossier by dossier: dossier/group_commit.py.)
            if snapshot and all(self._stored(d) is Stored.RECORDED for d in aggregates):
                self._snapshot(self._recorded(aggregates))
                return
            if len(aggregates) == 1 and aggregates[0].version == 1:
                first = aggregates[0]
                raise DossierExistsError(
                    f"case {first.case_number} already has a dossier: {first.id}",
                    dossier=str(first.id),
                    case_number=first.case_number,
                ) from exc
            raise DossierConflictError("the dossier changed meanwhile; read it again and retry") from exc
        if snapshot:
            self._snapshot(due)
        else:
            self._due.add(due)

    def _save_batch(self, aggregates: Sequence[Dossier]) -> None:
        self._save(*aggregates, snapshot=False)

    def _stored(self, d: Dossier) -> Stored:
        """What the store holds past the version ``d`` was read at (its save conflicted): nothing, another
        writer's events, or ``d``'s own pending events (an earlier try of the same save was recorded).
        An event is known as ours by its type and its whole content as stored (not by its type, version and
        timestamp alone: two writers' clocks can read the same microsecond). Raises EventStoreUnavailableError."""
        mine = d.pending_events
        if not mine:
            return Stored.FRESH
        try:
            there = list(self.events.get(d.id, gt=mine[0].originator_version - 1, limit=len(mine)))
        except (OperationalError, InterfaceError) as exc:
            raise EventStoreUnavailableError("the event store does not answer; nothing was recorded") from exc
        if not there:
            return Stored.FRESH
        return Stored.RECORDED if len(there) == len(mine) and all(map(self._same, there, mine)) else Stored.MOVED

    def _same(self, stored: object, pending: object) -> bool:
        """Whether ``stored`` (read back) is ``pending`` as the store records it (the transcoder's round
        trip: a tuple comes back a list)."""
        transcoder = self.mapper.transcoder
        return type(stored) is type(pending) and vars(stored) == transcoder.decode(transcoder.encode(vars(pending)))

    def _catch_up(self, d: Dossier) -> None:
        """Apply to ``d`` (held for writing, nothing pending) the events stored past its version: one read.
        Raises EventStoreUnavailableError."""
        try:
            for e in self.events.get(d.id, gt=d.version):
                assert isinstance(e, Dossier.Event)
                e.mutate(d)
        except (OperationalError, InterfaceError) as exc:
            raise EventStoreUnavailableError("the event store does not answer; nothing was recorded") from exc

    def enqueue(self, pending: Pending[T]) -> Future[T]:
        """Queue a checked command for the next group commit (dossier/group_commit.py); its future."""
        fn, guard = pending.fn, pending.guard

        def run(d: Dossier) -> T:
            before = len(d.pending_events)
            if guard is not None:
                guard(d)
            result = fn(d)
            check_fits(d.pending_events[before:])  # a leaf the log cannot hold would stop it: refuse now
            return result

        return self._commits.submit(_ident(pending.dossier), run)

    def close(self) -> None:
        self._commits.close()
        super().close()

    def _versioned(self, dossier: UUID | str, record: Callable[[Dossier], None], guard: Guard | None) -> Pending[int]:
        """A command that records events; its result is the dossier's new version."""

        def run(d: Dossier) -> int:
            record(d)
            return d.version

        return Pending(dossier, run, guard)

    def open_dossier(self, *, case_number_text: str, case_type: str, parties: list[dict[str, Any]],
                     actor: str, role: str, first_instance: str | None = None) -> UUID:  # fmt: skip
        """Open a case's dossier; ``first_instance``: the dossier (held here, e.g. received on appeal)
        this case continues, named by a ``FirstInstanceLinked`` event saved with the opening."""
        number = normal_case_number(fields.text(case_number_text, "case number"))
        self.courts.check_own(number, self.court)
        d = Dossier(court=self.court, case_number=number, case_type=fields.choice(case_type, "case type", CASE_TYPES),
                    parties=party_list(parties, most=fields.MAX_PARTIES), **fields.who(actor, role))  # fmt: skip
        if first_instance is not None:
            first = self.get(first_instance, copy=False)
            if first.holder != self.court or first.id == d.id:
                raise DossierNotFoundError(f"no dossier {first_instance} held by this court")
            d.link_first_instance(dossier=str(first.id), case_number=first.case_number, court=first.court,
                                  actor=actor, role=role)  # fmt: skip
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
        # The one read before the bytes are stored, to refuse early; the command checks again on the
        # dossier held for writing (no second read while it is held).
        d = self.get(dossier, copy=False)
        if guard is not None:
            guard(d)
        d.ensure_own()  # a received dossier takes nothing: refused before the bytes are stored
        doc = document_fields(name, media_type, doc_type)  # all checked before the bytes are stored
        name, media_type = doc["name"], doc["media_type"]
        title = fields.text(name.rsplit(".", 1)[0] or name, "title")  # " .txt" has no title: refused here too
        source = fields.choice(source, "source", SOURCES)
        acting = fields.who(actor, role)
        if media_type == "application/pdf":  # counted from the bytes as they are stored, never read back
            with PdfCopy() as copy:
                info = self.blobs.put(copy.passing(stream), expected_sha256)
                pdf = copy.info()
        else:
            info, pdf = self.blobs.put(stream, expected_sha256), None
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
