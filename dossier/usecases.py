"""The node's use cases that span more than one command: archive, a package, an inspection, a
receipt once sealed, the retrieval of a dossier from another court. The API's handlers and the
``sifa`` commands call these; they know no HTTP.

Each waits for the sealer where it must (dossier/sealed.py: on the event loop, no thread held),
and does its store work in a worker thread. ``guard`` is the caller's access check, run on the
dossier as the use case reads it (as the application's commands run it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from dossier.courts import origin_for
from dossier.domain import PARTY_ROLES, Dossier
from dossier.envelope import utc
from dossier.errors import DossierConflictError, InspectionFailedError, UnknownCourtError, UnknownFileError
from dossier.inspection import Copies, inspect
from dossier.package import PackagePlan, plan_package
from dossier.record import original_times, recorded
from dossier.sealed import until, until_sealed
from dossier.transfer import Imported, import_package
from evidence.package import Progress, Readable
from ledger.errors import TreeSizeError
from ledger.note import Verifier
from ledger.receipt import Receipt
from ledger.trust import Trust

if TYPE_CHECKING:
    from dossier.application import DossierApp
    from dossier.sealer import Sealer

log = logging.getLogger(__name__)

Guard = Callable[[Dossier], None]
RETENTION_YEARS = {"永久": 100, "长期": 30, "短期": 10}  # 保管期限; else a number of years
SEALED_WAIT = 10.0  # seconds a package, an inspection or an archive waits for the dossier's events to be sealed
RECEIPT_WAIT = 2.0  # seconds a receipt waits for its event to be sealed


class Stream(Readable, Protocol):
    def close(self) -> None: ...


class Fetch(Protocol):
    """A signed GET to another court's node (api/peers.py ``peer_get``): the answer, to stream."""

    def __call__(self, base_url: str, target: str, *, to: str) -> Stream: ...


@dataclass(frozen=True)
class EventSeen:
    version: int
    type: str
    time: str
    leaf_index: int | None  # None until sealed


@dataclass(frozen=True)
class Download:
    document_id: str
    name: str
    media_type: str
    size: int
    chunks: Iterator[bytes]


def read_dossier(sealer: Sealer, dossier: str, *, court: str, role: str, staff: bool, actor: str,
                 guard: Guard) -> dict[str, Any]:  # fmt: skip
    """Read a dossier (阅卷), recorded as an event: everything recorded in it (dossier/record.py), each
    record with its leaf and receipt; the 副卷's documents left out for a lawyer or party. ``staff``:
    the reader is the court's own (names; the parties without their salts)."""
    app = sealer.app
    d = app.retrieve(dossier, by_court=court, by=actor, reason="阅卷", actor=actor, role=role, guard=guard)
    hidden = d.hidden_from(role)
    files = {v["sha256"] for k, v in d.documents.items() if k not in hidden}
    found = app.repository.event_store.get(d.id, lte=d.version)
    kept = (d.received or {}).get("events_sha256")  # a received copy: the lower court's leaves, kept
    originals = original_times(b"".join(app.blobs.read(kept)).splitlines()) if kept else None
    records = recorded(str(d.id), found, lambda v: sealer.log.last(f"event:{d.id}:{v}"), hidden=hidden, names=staff,
                       files=files, originals=originals)  # fmt: skip
    out: dict[str, Any] = {"id": str(d.id), "court": d.court, "case_number": d.case_number, "case_type": d.case_type,
                           "version": d.version, "archived": d.archived, **records}  # fmt: skip
    out["documents"] = {k: {**v, **records["documents"].get(k, {})} for k, v in d.documents.items() if k not in hidden}
    if staff:
        out["parties"] = [{k: v for k, v in p.items() if k != "salts"} for p in d.parties]
    return out


def dossier_events(sealer: Sealer, dossier: str, *, court: str, role: str, actor: str,
                   guard: Guard) -> list[EventSeen]:  # fmt: skip
    """Every event of a dossier, oldest first, with its leaf once sealed; the read is recorded. A
    lawyer or party does not see the events of the 副卷's documents."""
    app = sealer.app
    d = app.retrieve(dossier, by_court=court, by=actor, reason="查看事件", actor=actor, role=role, guard=guard)
    hidden = d.hidden_from(role)
    out = []
    for e in app.repository.event_store.get(d.id, lte=d.version):
        assert isinstance(e, Dossier.Event)
        if vars(e).get("document_id") in hidden:
            continue
        leaf = sealer.log.find(f"event:{e.originator_id}:{e.originator_version}")
        out.append(EventSeen(e.originator_version, type(e).__name__, utc(e.timestamp), leaf[0] if leaf else None))
    return out


def download(app: DossierApp, dossier: str, sha256: str, *, court: str, role: str, actor: str,
             guard: Guard, reason: str = "下载") -> Download:  # fmt: skip
    """One of a dossier's files, to stream; the download is recorded (naming the document read, and
    ``reason``). Raises UnknownFileError (none in the dossier, or only a 副卷 one for a lawyer or party)."""
    d = app.get(dossier)
    guard(d)
    hidden = d.hidden_from(role)  # a 副卷 file is absent for a lawyer or party
    court_only = d.court_only()
    # The document read: one outside the 副卷 if any holds these bytes; the download of a 副卷
    # document is recorded as court-only (it names the document), hidden like its other events.
    held = sorted((k in court_only, k) for k, v in d.documents.items() if v["sha256"] == sha256 and k not in hidden)
    if not held:
        raise UnknownFileError(f"no file {sha256} in this dossier")
    document_id = held[0][1]
    doc = d.documents[document_id]
    # Opened first: a store that does not answer, or a file known corrupt, fails before anything is recorded.
    # The store verifies the bytes as they stream and cuts the body short if they are not the file's.
    stream = app.blobs.read(sha256, size=doc["size"])
    try:
        app.retrieve(dossier, by_court=court, by=actor, reason=f"{reason} {sha256}", document_id=document_id,
                     actor=actor, role=role, guard=guard)  # fmt: skip
    except BaseException:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        raise
    return Download(document_id, doc["name"], doc["media_type"], doc["size"], stream)


def retention_until(retention: str, now: datetime | None = None) -> datetime:
    """The end of a retention period (永久, 长期, 短期, or a number of years) counted from ``now``."""
    years = RETENTION_YEARS.get(retention) or int(retention)
    return (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(days=366 * years)


async def _sealed_now(sealer: Sealer, dossier: str, guard: Guard) -> Dossier:
    """The dossier (after ``guard``), once its events up to now are sealed (NotSealedError after SEALED_WAIT)."""
    d = await asyncio.to_thread(sealer.app.get, dossier, copy=False)
    guard(d)
    await until_sealed(sealer, d.id, d.version, SEALED_WAIT)
    return d


async def inspection(sealer: Sealer, dossier: str, log_key: Verifier, *, guard: Guard) -> dict[str, Any]:
    """The four-property check (四性检测) archiving would run now."""
    d = await _sealed_now(sealer, dossier, guard)
    report = await asyncio.to_thread(inspect, sealer, str(d.id), log_key)
    return report.to_json()


async def package(sealer: Sealer, read: Callable[[], Dossier], *, court_name: str, purpose: str,
                  personal: bool = True, court: bool = True, role: str | None = None,
                  principal: str | None = None) -> PackagePlan:  # fmt: skip
    """The package of a dossier as ``read`` (a recorded read, run first) saw it, once that is sealed;
    with the disclosures ``role`` may be shown (docs/privacy.md)."""
    d = await asyncio.to_thread(read)
    await until_sealed(sealer, d.id, d.version, SEALED_WAIT)
    return await asyncio.to_thread(plan_package, sealer, d.id, court_name=court_name, purpose=purpose,
                                   personal=personal, court=court, role=role, principal=principal,
                                   version=d.version)  # fmt: skip


async def archive(sealer: Sealer, dossier: str, *, retention: str, court_name: str, log_key: Verifier, actor: str,
                  role: str, guard: Guard) -> int:  # fmt: skip
    """Archive (归档): the four-property check; if it passes, the archive package (BagIt, with the
    report) into the blob store, it and every file locked for the retention period, and its hash
    recorded. Returns the dossier's new version. Raises InspectionFailedError (the report is its
    detail), DossierArchivedError, DossierConflictError (the dossier changed meanwhile)."""
    d = await asyncio.to_thread(sealer.app.get, dossier, copy=False)
    guard(d)
    if d.archived:  # archived, but its locks may not all have been set (the store failed): set them now
        await asyncio.to_thread(_relock, sealer, d)
    d.check_open()
    await until_sealed(sealer, d.id, d.version, SEALED_WAIT)
    return await asyncio.to_thread(_archive, sealer, d.id, retention=retention, court_name=court_name,
                                   log_key=log_key, actor=actor, role=role, guard=guard)  # fmt: skip


def _archive(sealer: Sealer, dossier: UUID, *, retention: str, court_name: str, log_key: Verifier, actor: str,
             role: str, guard: Guard) -> int:  # fmt: skip
    blobs = sealer.app.blobs
    with Copies(blobs) as copies:  # each file read once: checked, then packaged from the copy
        report = inspect(sealer, str(dossier), log_key, keep=copies)
        if not report.passed:
            raise InspectionFailedError(f"四性检测 failed ({'、'.join(report.failed)}); the dossier is not archived",
                                        report=report.to_json())  # fmt: skip
        plan = plan_package(sealer, dossier, court_name=court_name, purpose="归档", inspection=report.to_json())
        if plan.version != report.version:
            raise DossierConflictError("the dossier changed during its check; archive again")
        info = blobs.put(plan.stream(copies))

    def unchanged(now: Dossier) -> None:
        guard(now)
        if now.version != plan.version:
            raise DossierConflictError("the dossier changed while its archive package was written; archive again")

    # Recorded first, locked after: an archive refused here (the dossier changed meanwhile) leaves
    # nothing locked, only its package, unreferenced, which the fixity collector removes in time.
    version = sealer.app.archive(dossier, retention=retention, package_sha256=info.sha256, actor=actor, role=role,
                                 guard=unchanged)  # fmt: skip
    locked = retention_until(retention)
    for sha in [*(s for s, _ in plan.files), info.sha256]:
        try:
            blobs.lock(sha, locked)  # a longer lock (another archive's) stays
        except Exception:
            log.error("ALARM: dossier %s is archived (version %d) but file %s could not be locked for its retention "
                      "(%s): archive it again once the store answers, to lock it", dossier, version, sha,
                      locked.isoformat())  # fmt: skip
            raise
    return version


def _relock(sealer: Sealer, d: Dossier) -> None:
    """Lock an archived dossier's files and package if its package is not locked: the archive was
    recorded and its locks then failed part-way (the package is locked last)."""
    blobs = sealer.app.blobs
    package = (d.archived or {})["package_sha256"]
    if blobs.stat(package).locked_until is not None:
        return
    files = {vars(e)["sha256"] for e in sealer.app.repository.event_store.get(d.id, lte=d.version)
             if isinstance(vars(e).get("sha256"), str) and "size" in vars(e)}  # fmt: skip
    locked = retention_until((d.archived or {})["retention"])
    for sha in [*sorted(files), package]:
        blobs.lock(sha, locked)
    log.warning("dossier %s: the locks its archive left unset are set now (until %s)", d.id, locked.isoformat())


async def event_receipt(sealer: Sealer, dossier: str, version: int, *, role: str, guard: Guard,
                        principal: str | None = None) -> Receipt:  # fmt: skip
    """The receipt (存证凭证) of one event, once sealed (waiting up to RECEIPT_WAIT). For a lawyer or
    party an event of a 副卷 document is answered exactly as one that does not exist. Raises
    TreeSizeError (no such event for the caller, or not sealed in time)."""
    app = sealer.app
    partial = role in PARTY_ROLES
    d = await asyncio.to_thread(app.get, dossier, copy=partial)
    guard(d)
    absent = TreeSizeError(f"event {version} of dossier {d.id} is not sealed yet")
    if partial and 1 <= version <= d.version:  # the 副卷's events are absent for them
        [e] = await asyncio.to_thread(app.repository.event_store.get, d.id, gt=version - 1, lte=version)
        if vars(e).get("document_id") in d.hidden_from(role):
            raise absent
    if version > d.version or version < 1:
        raise absent

    def look() -> Receipt | None:
        try:
            # a lawyer's or party's receipt discloses what their role may read (docs/privacy.md)
            return sealer.receipt_for_event(str(d.id), version, role=role if partial else "staff", principal=principal)
        except TreeSizeError:
            return None

    return await until(look, timeout=RECEIPT_WAIT, error=lambda: absent)


def retrieve_from(app: DossierApp, trust: Trust, court: str, dossier: str, *, fetch: Fetch, actor: str,
                  progress: Progress | None = None) -> Imported:  # fmt: skip
    """Fetch a dossier's package from ``court``'s node (``fetch``: a signed request addressed to it),
    verify it as it streams against that court's key (and the witness quorum ``trust`` asks), import
    it. Raises UnknownCourtError (no key and url for the court in ``trust``), the fetch's errors,
    PackageInvalidError."""
    origin = origin_for(court)
    url = trust.log_urls.get(origin)
    keys = [k for k in trust.logs if k.name == origin]
    if url is None or not keys:
        raise UnknownCourtError(f"court {court} ({origin}) has no log key and url in this node's peers file")
    stream = fetch(url, f"/v1/peer/dossiers/{dossier}/package", to=origin)
    try:
        return import_package(app, stream, logs=keys, witnesses=trust.witnesses, quorum=trust.quorum,
                              actor=actor, progress=progress)  # fmt: skip
    finally:
        stream.close()
