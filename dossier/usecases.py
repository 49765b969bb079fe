"""The node's use cases that span more than one command: archive, a package, an inspection, a
receipt once sealed, the retrieval of a dossier from another court. The API's handlers and the
``sifa`` commands call these; they know no HTTP.

Each waits for the sealer where it must (dossier/sealed.py: on the event loop, no thread held),
and does its store work in a worker thread. ``guard`` is the caller's access check, run on the
dossier as the use case reads it (as the application's commands run it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from dossier.courts import origin_for
from dossier.domain import PARTY_ROLES, Dossier
from dossier.errors import DossierConflictError, InspectionFailedError, UnknownCourtError
from dossier.inspection import inspect
from dossier.package import PackagePlan, plan_package
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

Guard = Callable[[Dossier], None]
RETENTION_YEARS = {"永久": 100, "长期": 30, "短期": 10}  # 保管期限; else a number of years
SEALED_WAIT = 10.0  # seconds a package, an inspection or an archive waits for the dossier's events to be sealed
RECEIPT_WAIT = 2.0  # seconds a receipt waits for its event to be sealed


class Stream(Readable, Protocol):
    def close(self) -> None: ...


class Fetch(Protocol):
    """A signed GET to another court's node (api/peers.py ``peer_get``): the answer, to stream."""

    def __call__(self, base_url: str, target: str, *, to: str) -> Stream: ...


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
    return await asyncio.to_thread(inspect, sealer, str(d.id), log_key)


async def package(sealer: Sealer, read: Callable[[], Dossier], *, court_name: str, purpose: str,
                  personal: bool = True, court: bool = True) -> PackagePlan:  # fmt: skip
    """The package of a dossier as ``read`` (a recorded read, run first) saw it, once that is sealed."""
    d = await asyncio.to_thread(read)
    await until_sealed(sealer, d.id, d.version, SEALED_WAIT)
    return await asyncio.to_thread(plan_package, sealer, d.id, court_name=court_name, purpose=purpose,
                                   personal=personal, court=court, version=d.version)  # fmt: skip


async def archive(sealer: Sealer, dossier: str, *, retention: str, court_name: str, log_key: Verifier, actor: str,
                  role: str, guard: Guard) -> int:  # fmt: skip
    """Archive (归档): the four-property check; if it passes, the archive package (BagIt, with the
    report) into the blob store, it and every file locked for the retention period, and its hash
    recorded. Returns the dossier's new version. Raises InspectionFailedError (the report is its
    detail), DossierArchivedError, DossierConflictError (the dossier changed meanwhile)."""
    d = await asyncio.to_thread(sealer.app.get, dossier, copy=False)
    guard(d)
    d.check_open()
    await until_sealed(sealer, d.id, d.version, SEALED_WAIT)
    return await asyncio.to_thread(_archive, sealer, d.id, retention=retention, court_name=court_name,
                                   log_key=log_key, actor=actor, role=role, guard=guard)  # fmt: skip


def _archive(sealer: Sealer, dossier: UUID, *, retention: str, court_name: str, log_key: Verifier, actor: str,
             role: str, guard: Guard) -> int:  # fmt: skip
    blobs = sealer.app.blobs
    report = inspect(sealer, str(dossier), log_key)
    if not report["passed"]:
        failed = [p for p, r in report["properties"].items() if not r["passed"]]
        raise InspectionFailedError(f"四性检测 failed ({'、'.join(failed)}); the dossier is not archived",
                                    report=report)  # fmt: skip
    plan = plan_package(sealer, dossier, court_name=court_name, purpose="归档", inspection=report)
    if plan.version != report["version"]:
        raise DossierConflictError("the dossier changed during its check; archive again")
    info = blobs.put(plan.stream(blobs))
    locked = retention_until(retention)
    for sha in [*(s for s, _ in plan.files), info.sha256]:
        if (blobs.stat(sha).locked_until or locked) <= locked:  # a longer lock stays
            blobs.lock(sha, locked)

    def unchanged(now: Dossier) -> None:
        guard(now)
        if now.version != plan.version:
            raise DossierConflictError("the dossier changed while its archive package was written; archive again")

    return sealer.app.archive(dossier, retention=retention, package_sha256=info.sha256, actor=actor, role=role,
                              guard=unchanged)  # fmt: skip


async def event_receipt(sealer: Sealer, dossier: str, version: int, *, role: str, guard: Guard) -> Receipt:
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
            return sealer.receipt_for_event(str(d.id), version)
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
