"""Courts' dossier endpoints: open, upload, catalogue, record, transfer, archive, read."""

from __future__ import annotations

import asyncio
import queue
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, unquote
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import CallerDep, Services, ServicesDep, roles
from api.principals import Caller, NotAdmittedError
from dossier.domain import PARTY_ROLES, Dossier
from dossier.envelope import utc
from dossier.errors import DossierConflictError, InspectionFailedError, InvalidDossierInputError
from dossier.fields import LIMITS, MAX_CONTRACT_PARTIES, MAX_ORDER, MAX_PAGES, MAX_PARTIES, MAX_SIZE
from ledger.errors import SifaError, TreeSizeError
from ledger.receipt import Receipt
from storage.blobstore import check_digest

router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])
T = TypeVar("T")

STAFF = ("clerk", "judge", "archivist")
READERS = (*STAFF, "lawyer", "party")
RETENTION_YEARS = {"永久": 100, "长期": 30, "短期": 10}
# A percent-encoded header: up to 4 UTF-8 bytes a character, 3 ASCII characters a byte.
NAME_HEADER, DOC_TYPE_HEADER = 12 * LIMITS["file name"], 12 * LIMITS["doc type"]


class PayloadTooLargeError(SifaError):
    code = "payload_too_large"


class UnsupportedMediaError(SifaError):
    code = "unsupported_media_type"


class HeaderNotAsciiError(SifaError):
    """A text header sent as raw bytes: clients disagree on their encoding, so it is refused, never guessed."""

    code = "header_not_ascii"


# The bounds below mirror the library's (dossier/fields.py), which checks them again.
class Party(BaseModel):
    role: str = Field(min_length=1, max_length=LIMITS["party role"], examples=["原告"])
    kind: str = Field("natural", pattern="^(natural|legal)$")
    name: str = Field(min_length=1, max_length=LIMITS["party name"], examples=["张三"])
    id_number: str | None = Field(None, max_length=LIMITS["party id_number"])
    phone: str | None = Field(None, max_length=LIMITS["party phone"])
    address: str | None = Field(None, max_length=LIMITS["party address"])


class OpenDossier(BaseModel):
    case_number: str = Field(max_length=LIMITS["case number"], examples=["（2026）京0105民初123号"])
    case_type: str = Field(max_length=20, examples=["民事"])
    parties: list[Party] = Field(default_factory=list, max_length=MAX_PARTIES)


class Written(BaseModel):
    dossier: str
    version: int


class Uploaded(Written):
    document_id: str
    sha256: str
    size: int
    pages: int | None
    category: str
    placed_by: str


class CatalogueEntry(BaseModel):
    document_id: str = Field(max_length=LIMITS["document id"])
    volume: str = Field(pattern="^(正卷|副卷)$")
    category: str = Field(min_length=1, max_length=LIMITS["category"])
    order: int = Field(ge=0, le=MAX_ORDER, strict=True)  # never a boolean, a float or a numeric string
    title: str = Field(min_length=1, max_length=LIMITS["title"])
    pages: int | None = Field(None, ge=0, le=MAX_PAGES, strict=True)


SHA = Field(pattern="^[0-9a-f]{64}$", examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"])


class Evidence(BaseModel):
    sha256: str = SHA
    size: int = Field(ge=0, le=MAX_SIZE, strict=True)
    name: str = Field(min_length=1, max_length=LIMITS["evidence name"])
    submitter: Party
    description: str = Field("", max_length=LIMITS["description"])


class Service(BaseModel):
    document_id: str = Field(max_length=LIMITS["document id"])
    recipient: Party
    channel: str = Field(min_length=1, max_length=LIMITS["channel"], examples=["电子送达平台"])
    sent_at: AwareDatetime
    delivered_at: AwareDatetime | None = None
    read_at: AwareDatetime | None = None
    receipt_sha256: str | None = Field(None, pattern="^[0-9a-f]{64}$")


class Contract(BaseModel):
    contract_sha256: str = SHA
    parties: list[Party] = Field(min_length=1, max_length=MAX_CONTRACT_PARTIES)
    signed_at: AwareDatetime


class Transfer(BaseModel):
    to_court: str = Field(max_length=20, examples=["1101-0200"])
    kind: str = Field(pattern="^(上诉|移送|再审)$")
    reason: str = Field(min_length=1, max_length=LIMITS["reason"])


class Archive(BaseModel):
    retention: str = Field(pattern="^(永久|长期|短期|[1-9][0-9]?)$", examples=["永久"])


def _party(p: Party) -> dict[str, Any]:
    return p.model_dump(exclude_none=True)


_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")


def header_text(name: str, value: str, *, encoded: bool = True) -> str:
    """A text header's value: ASCII on the wire, percent-encoded UTF-8 when ``encoded`` (decoded
    strictly: a bad sequence is invalid_encoding). Raw bytes >= 0x80 are refused, never stored garbled."""
    if not value.isascii():  # the server hands raw header bytes over as Latin-1
        how = f"percent-encoded UTF-8, e.g. {quote('证据目录.pdf')} for 证据目录.pdf" if encoded else "ASCII"
        raise HeaderNotAsciiError(f"header {name} holds bytes that are not ASCII; send it as {how}", header=name)
    if not encoded:
        return value
    bad = _BAD_ESCAPE.search(value)
    if bad is not None:  # unquote would keep "%ZZ" as typed: refused, never stored as something else
        raise UnicodeDecodeError("utf-8", value.encode("ascii"), bad.start(), bad.end(),
                                 f"header {name}: '%' is not followed by two hex digits")  # fmt: skip
    return unquote(value, errors="strict")


def _open_to(caller: Caller, d: Dossier) -> None:
    if not caller.may_read(str(d.id), d.holder):
        raise NotAdmittedError("this dossier is not open to you")


def _dossier(services: Services, caller: Caller, dossier: str, *, copy: bool = True) -> Dossier:
    d = services.dossiers.get(dossier, copy=copy)
    _open_to(caller, d)
    return d


def _act(caller: Caller) -> dict[str, Any]:
    """Who acts, and the check that the dossier is open to them (run on the dossier the command sees)."""
    return {"actor": caller.actor, "role": caller.role, "guard": lambda d: _open_to(caller, d)}


@router.post("", response_model=Written, status_code=201, openapi_extra=roles("clerk", "judge"))
def open_dossier(body: OpenDossier, caller: CallerDep, services: ServicesDep) -> Written:
    """Open a case's dossier (立案)."""
    d = services.dossiers.open_dossier(case_number_text=body.case_number, case_type=body.case_type,
                                       parties=[_party(p) for p in body.parties], actor=caller.actor,
                                       role=caller.role)  # fmt: skip
    return Written(dossier=str(d), version=1)


@router.get("/{dossier}", openapi_extra=roles(*READERS))
def read(dossier: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The dossier: catalogue (卷内目录), documents, transfers. The read is recorded (调阅).
    A lawyer or party sees the 正卷 only: the 副卷's documents are left out."""
    d = services.dossiers.retrieve(dossier, by_court=services.config.court, by=caller.actor, reason="阅卷",
                                   **_act(caller))  # fmt: skip
    hidden = d.hidden_from(caller.role)
    catalogue = sorted(({"document_id": k, **v} for k, v in d.catalogue.items() if k not in hidden),
                       key=lambda e: (e["volume"] != "正卷", e["order"], e["title"]))  # fmt: skip
    documents = {k: v for k, v in d.documents.items() if k not in hidden}
    out: dict[str, Any] = {"id": str(d.id), "court": d.court, "case_number": d.case_number,
                           "case_type": d.case_type, "version": d.version, "archived": d.archived,
                           "catalogue": catalogue, "documents": documents, "transfers": d.transfers}  # fmt: skip
    if caller.role in STAFF:
        out["parties"] = [{k: v for k, v in p.items() if k != "salts"} for p in d.parties]
    return out


@router.get("/{dossier}/events", openapi_extra=roles(*READERS))
def events(dossier: str, caller: CallerDep, services: ServicesDep) -> list[dict[str, Any]]:
    """Every event of the dossier, oldest first, with its leaf once sealed. The read is recorded.
    A lawyer or party does not see the events of the 副卷's documents."""
    d = services.dossiers.retrieve(dossier, by_court=services.config.court, by=caller.actor, reason="查看事件",
                                   **_act(caller))  # fmt: skip
    hidden = d.hidden_from(caller.role)
    out = []
    for e in services.dossiers.repository.event_store.get(d.id, lte=d.version):
        assert isinstance(e, Dossier.Event)
        if vars(e).get("document_id") in hidden:
            continue
        leaf = services.log.find(f"event:{e.originator_id}:{e.originator_version}")
        out.append({"version": e.originator_version, "type": type(e).__name__, "time": utc(e.timestamp),
                    "leaf_index": leaf[0] if leaf else None})  # fmt: skip
    return out


class _Pipe:
    """Hands an async request body to a synchronous consumer thread, chunk by chunk."""

    ABORT = object()

    def __init__(self) -> None:
        self.q: queue.Queue[object] = queue.Queue(maxsize=8)

    def chunks(self) -> Iterator[bytes]:
        while (item := self.q.get()) is not None:
            if item is self.ABORT:
                raise ConnectionAbortedError("the upload was cut off")
            assert isinstance(item, bytes)
            yield item

    async def put(self, item: object, consumer: asyncio.Future[Any]) -> None:
        while True:
            try:
                self.q.put_nowait(item)
                return
            except queue.Full:
                if consumer.done():
                    return
                await asyncio.sleep(0.001)


@router.post(
    "/{dossier}/documents",
    response_model=Uploaded,
    status_code=201,
    openapi_extra={**roles("clerk", "judge", "lawyer", "party"), "requestBody": {
        "required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                      "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)  # fmt: skip
async def upload(
    dossier: str,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    x_file_name: Annotated[str, Header(description="percent-encoded UTF-8 file name", max_length=NAME_HEADER)],
    content_type: Annotated[str, Header()] = "application/octet-stream",
    x_content_sha256: Annotated[str | None, Header(description="declared SHA-256, checked on arrival")] = None,
    x_doc_type: Annotated[
        str | None, Header(description="percent-encoded UTF-8 declared type, e.g. 起诉状", max_length=DOC_TYPE_HEADER)
    ] = None,
) -> Uploaded:
    """Upload a document as the raw request body, streamed (never held in memory), auto-catalogued.
    Text headers are ASCII: ``X-File-Name`` and ``X-Doc-Type`` percent-encoded UTF-8."""
    name = header_text("X-File-Name", x_file_name)
    doc_type = header_text("X-Doc-Type", x_doc_type) if x_doc_type else None
    content_type = header_text("Content-Type", content_type, encoded=False)
    if x_content_sha256 is not None:
        header_text("X-Content-SHA256", x_content_sha256, encoded=False)
    limit = services.settings.max_upload_bytes
    # Content-Length is the HTTP server's to parse (a malformed one never reaches us).
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"a document may have at most {limit} bytes")
    media = content_type.split(";")[0].strip().lower()
    if media.startswith("multipart/") or not media or "/" not in media:
        raise UnsupportedMediaError("send the document as the raw body with its own media type")
    if x_content_sha256 is not None:
        check_digest(x_content_sha256)
    await asyncio.to_thread(lambda: _dossier(services, caller, dossier, copy=False))
    source = "court" if caller.role in STAFF else caller.role
    result = await streamed_body(request, limit, "a document", lambda chunks: services.dossiers.upload(
        dossier, chunks, name=name, media_type=media, source=source, doc_type=doc_type,
        expected_sha256=x_content_sha256, **_act(caller)))  # fmt: skip
    return Uploaded(dossier=dossier, **result)


async def streamed_body(request: Request, limit: int, what: str, consume: Callable[[Iterator[bytes]], T]) -> T:
    """Hand the request body, as it arrives, to ``consume`` in a worker thread; its result.
    More than ``limit`` bytes is refused (413); a body cut off reaches ``consume`` as an error."""
    pipe = _Pipe()
    consumer = asyncio.get_running_loop().run_in_executor(None, consume, pipe.chunks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLargeError(f"{what} may have at most {limit} bytes")
            if chunk:
                await pipe.put(chunk, consumer)
    except BaseException:
        await pipe.put(_Pipe.ABORT, consumer)
        await asyncio.gather(consumer, return_exceptions=True)
        raise
    await pipe.put(None, consumer)
    return await consumer


@router.get("/{dossier}/files/{sha256}", response_class=StreamingResponse, openapi_extra=roles(*READERS))
def download(dossier: str, sha256: str, caller: CallerDep, services: ServicesDep) -> StreamingResponse:
    """Download one of the dossier's files (streamed). The read is recorded."""
    d = _dossier(services, caller, check_digest(sha256) and dossier)
    hidden = d.hidden_from(caller.role)  # a 副卷 file is absent for a lawyer or party
    court_only = d.court_only()
    # The document read: one outside the 副卷 if any holds these bytes; the download of a 副卷
    # document is recorded as court-only (it names the document), hidden like its other events.
    held = sorted((k in court_only, k) for k, v in d.documents.items() if v["sha256"] == sha256 and k not in hidden)
    if not held:
        raise TreeSizeError(f"no file {sha256} in this dossier")
    document_id = held[0][1]
    doc = d.documents[document_id]
    # Opened first: a store that does not answer, or a file known corrupt, fails before anything is recorded.
    # The store verifies the bytes as they stream and cuts the body short if they are not the file's.
    stream = services.blobs.read(sha256, size=doc["size"])
    try:
        services.dossiers.retrieve(dossier, by_court=services.config.court, by=caller.actor, reason=f"下载 {sha256}",
                                   document_id=document_id, **_act(caller))  # fmt: skip
    except BaseException:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        raise
    return StreamingResponse(stream, media_type=doc["media_type"], headers={"Content-Length": str(doc["size"])})


async def _written(dossier: str, recorded: Future[int]) -> Written:
    """Wait, without blocking the event loop, until the command is recorded."""
    version = await asyncio.wrap_future(recorded)
    return Written(dossier=str(UUID(dossier)), version=version)  # the command read it: a valid id


@router.post("/{dossier}/catalogue", response_model=Written, openapi_extra=roles("clerk", "archivist"))
async def catalogue(dossier: str, body: CatalogueEntry, caller: CallerDep, services: ServicesDep) -> Written:
    """Place a document in the catalogue by hand (overrides the automatic placement)."""
    return await _written(dossier, services.dossiers.catalogue.future(dossier, **body.model_dump(), **_act(caller)))


@router.post("/{dossier}/evidence", response_model=Written, openapi_extra=roles("clerk", "lawyer", "party"))
async def evidence(dossier: str, body: Evidence, caller: CallerDep, services: ServicesDep) -> Written:
    """Register electronic evidence (电子证据) by its hash."""
    v = services.dossiers.submit_evidence.future(dossier, sha256=body.sha256, size=body.size, name=body.name,
                                                 submitter=_party(body.submitter), description=body.description,
                                                 **_act(caller))  # fmt: skip
    return await _written(dossier, v)


@router.post("/{dossier}/services", response_model=Written, openapi_extra=roles("clerk"))
async def service(dossier: str, body: Service, caller: CallerDep, services: ServicesDep) -> Written:
    """Record an electronic service (电子送达)."""
    v = services.dossiers.record_service.future(dossier, document_id=body.document_id, recipient=_party(body.recipient),
                                                channel=body.channel, sent_at=_when(body.sent_at),
                                                delivered_at=_opt(body.delivered_at), read_at=_opt(body.read_at),
                                                receipt_sha256=body.receipt_sha256,
                                                **_act(caller))  # fmt: skip
    return await _written(dossier, v)


def _opt(value: datetime | None) -> str | None:
    return _when(value) if value is not None else None


def _when(value: datetime) -> str:
    """A time as UTC; one whose offset takes it outside the years 1-9999 is refused."""
    try:
        return utc(value)
    except OverflowError:
        raise InvalidDossierInputError("a time must lie within the years 1 to 9999 in UTC") from None


@router.post("/{dossier}/contracts", response_model=Written, openapi_extra=roles("clerk", "lawyer", "party"))
async def contract(dossier: str, body: Contract, caller: CallerDep, services: ServicesDep) -> Written:
    """Register an electronic contract (电子合约) by its hash."""
    v = services.dossiers.register_contract.future(dossier, contract_sha256=body.contract_sha256,
                                                   parties=[_party(p) for p in body.parties],
                                                   signed_at=_when(body.signed_at), **_act(caller))  # fmt: skip
    return await _written(dossier, v)


@router.post("/{dossier}/transfers", response_model=Written, openapi_extra=roles("clerk", "judge"))
async def transfer(dossier: str, body: Transfer, caller: CallerDep, services: ServicesDep) -> Written:
    """Transfer the dossier on appeal, transfer or retrial (上诉/移送/再审) to a known court."""
    v = services.dossiers.transfer.future(dossier, to_court=body.to_court, kind=body.kind, reason=body.reason,
                                          **_act(caller))  # fmt: skip
    return await _written(dossier, v)


@router.post("/{dossier}/archive", response_model=Written, openapi_extra=roles("archivist"))
def archive(dossier: str, body: Archive, caller: CallerDep, services: ServicesDep) -> Written:
    """Archive (归档): run the four-property check (四性检测); if it passes, write the archive package
    (BagIt, with the report) into the blob store, lock it and every file for the retention period,
    and record its hash. A failing check blocks archiving; the report is the error's detail."""
    from dossier.inspection import inspect
    from dossier.package import plan_package

    d = _dossier(services, caller, dossier, copy=False)
    d._open()
    report = inspect(services.sealer, str(d.id), services.signer.verifier)
    if not report["passed"]:
        failed = [p for p, r in report["properties"].items() if not r["passed"]]
        raise InspectionFailedError(f"四性检测 failed ({'、'.join(failed)}); the dossier is not archived",
                                    report=report)  # fmt: skip
    plan = plan_package(services.sealer, d.id, court_name=services.config.name, purpose="归档", inspection=report)
    if plan.version != report["version"]:
        raise DossierConflictError("the dossier changed during its check; archive again")
    info = services.blobs.put(plan.stream(services.blobs))
    years = RETENTION_YEARS.get(body.retention) or int(body.retention)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=366 * years)
    for sha in [*(s for s, _ in plan.files), info.sha256]:
        if (services.blobs.stat(sha).locked_until or until) <= until:
            services.blobs.lock(sha, until)

    def unchanged(now: Dossier) -> None:
        _open_to(caller, now)
        if now.version != plan.version:
            raise DossierConflictError("the dossier changed while its archive package was written; archive again")

    v = services.dossiers.archive(dossier, retention=body.retention, package_sha256=info.sha256,
                                  actor=caller.actor, role=caller.role, guard=unchanged)  # fmt: skip
    return Written(dossier=str(d.id), version=v)


@router.get("/{dossier}/receipts/{version}", openapi_extra=roles(*READERS))
def receipt(dossier: str, version: int, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The receipt (存证凭证) of one event, once sealed (waits up to two seconds for the sequencer)."""
    return _receipt(services, caller, dossier, version).to_dict()


TLOG_PROOF_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "C2SP tlog-proof, leaf as extra"}
}


@router.get("/{dossier}/receipts/{version}/tlog-proof", openapi_extra=roles(*READERS), responses=TLOG_PROOF_TEXT)
def tlog_proof(dossier: str, version: int, caller: CallerDep, services: ServicesDep) -> PlainTextResponse:
    """The same receipt as C2SP tlog-proof text (save as ``.tlog-proof``; sifa-verify reads both)."""
    text = _receipt(services, caller, dossier, version).to_tlog_proof()
    return PlainTextResponse(text, media_type="text/plain; charset=utf-8")


def _receipt(services: Services, caller: Caller, dossier: str, version: int) -> Receipt:
    d = _dossier(services, caller, dossier, copy=caller.role in PARTY_ROLES)
    if caller.role in PARTY_ROLES and 1 <= version <= d.version:  # the 副卷's events are absent for them
        [e] = services.dossiers.repository.event_store.get(d.id, gt=version - 1, lte=version)
        if vars(e).get("document_id") in d.hidden_from(caller.role):  # answered as for an event that does not exist
            raise TreeSizeError(f"event {version} of dossier {d.id} is not sealed yet")
    deadline = time.monotonic() + 2.0
    while True:
        try:
            # a lawyer's or party's receipt discloses what their role may read (docs/privacy.md)
            role = caller.role if caller.role in PARTY_ROLES else "staff"
            return services.sealer.receipt_for_event(str(d.id), version, role=role, principal=caller.actor)
        except TreeSizeError:
            if version > d.version or version < 1 or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
