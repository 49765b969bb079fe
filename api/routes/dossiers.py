"""Courts' dossier endpoints: open, upload, catalogue, record, transfer, archive, read."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, unquote
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import CallerDep, Services, ServicesDep, acting, open_to, readable, roles
from api.downloads import download_headers
from api.principals import READERS, STAFF, Caller
from api.schemas import ReceiptDocument, receipt_document
from api.streaming import BodySlots, consume_in_thread
from api.uploads import DocumentExistsError, FirstCopy, first_answer, uploaded_answer
from dossier import usecases
from dossier.envelope import utc
from dossier.errors import InvalidDossierInputError
from dossier.fields import LIMITS, MAX_CONTRACT_PARTIES, MAX_ORDER, MAX_PAGES, MAX_PARTIES, MAX_SIZE
from dossier.media import typed
from ledger.errors import SifaError
from ledger.receipt import Receipt
from storage.blobstore import check_digest

router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])
T = TypeVar("T")

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
    first_instance: str | None = Field(None, max_length=64, description="on appeal: the first-instance dossier "
                                       "(received here) this case continues")  # fmt: skip


class Written(BaseModel):
    dossier: str
    version: int


class Uploaded(Written):
    document_id: str
    sha256: str
    size: int
    media_type: str = Field(description="as the content shows it (dossier/media.py)")
    pages: int | None
    category: str
    placed_by: str
    event: str = Field(description="the event that recorded the file: DocumentUploaded")
    event_version: int = Field(description="that event's version; its receipt carries the file's hash")
    receipt: str = Field(description="the path of that event's receipt")
    already_recorded: bool = Field(False, description="true (200): these bytes already were this document")


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


class DossierView(BaseModel):
    """A dossier as its reader may see it (a lawyer or party: the 正卷 only, no parties)."""

    id: str
    court: str
    case_number: str
    case_type: str
    version: int
    archived: dict[str, Any] | None = Field(description="retention and package_sha256, once archived")
    catalogue: list[dict[str, Any]] = Field(description="卷内目录: document_id, volume, category, order, title, "
                                            "pages; 正卷 first, then by order and title")  # fmt: skip
    documents: dict[str, dict[str, Any]] = Field(description="by document id: sha256, size, name, media_type, ...")
    transfers: list[dict[str, Any]]
    evidence: list[dict[str, Any]] = Field(description="each record with its version, leaf_index and receipt")
    services: list[dict[str, Any]] = Field(description="送达 records, with their 送达回执")
    contracts: list[dict[str, Any]]
    received_from: dict[str, Any] | None = Field(description="a received copy: the court and log it came from")
    archive: dict[str, Any] | None
    first_instance: dict[str, Any] | None = Field(description="a 二审 (再审): the first-instance dossier it continues")
    timeline: list[dict[str, Any]] = Field(description="every event the reader may see, oldest first")
    parties: list[dict[str, Any]] | None = Field(default=None, description="court staff only (absent for others)")


class EventView(BaseModel):
    version: int
    type: str = Field(examples=["DocumentUploaded"])
    time: str = Field(description="UTC, RFC 3339")
    leaf_index: int | None = Field(description="the event's leaf in the court's log; null until sealed")


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


_dossier, _act = readable, acting  # (api/deps.py) the names this module's handlers use


@router.post("", response_model=Written, status_code=201, openapi_extra=roles("clerk", "judge"))
def open_dossier(body: OpenDossier, caller: CallerDep, services: ServicesDep) -> Written:
    """Open a case's dossier (立案)."""
    d = services.dossiers.open_dossier(case_number_text=body.case_number, case_type=body.case_type,
                                       parties=[_party(p) for p in body.parties], actor=caller.actor,
                                       role=caller.role, first_instance=body.first_instance)  # fmt: skip
    return Written(dossier=str(d), version=1)


@router.get("/{dossier}", response_model=DossierView, response_model_exclude_unset=True, openapi_extra=roles(*READERS))
def read(dossier: str, caller: CallerDep, services: ServicesDep) -> DossierView:
    """The dossier: catalogue (卷内目录), documents, transfers. The read is recorded (调阅).
    A lawyer or party sees the 正卷 only: the 副卷's documents are left out."""
    seen = usecases.read_dossier(services.sealer, dossier, court=services.config.court, staff=caller.role in STAFF,
                                 **_act(caller))  # fmt: skip
    return DossierView(**seen)


@router.get("/{dossier}/events", response_model=list[EventView], openapi_extra=roles(*READERS))
def events(dossier: str, caller: CallerDep, services: ServicesDep) -> list[EventView]:
    """Every event of the dossier, oldest first, with its leaf once sealed. The read is recorded.
    A lawyer or party does not see the events of the 副卷's documents."""
    seen = usecases.dossier_events(services.sealer, dossier, court=services.config.court, **_act(caller))
    return [EventView(**asdict(e)) for e in seen]


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
    response: Response,
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
        raise UnsupportedMediaError(
            "send the document as the raw body with its own media type "
            "(a multipart/form-data form goes to /documents/form)"
        )
    if x_content_sha256 is not None:
        check_digest(x_content_sha256)
    source = "court" if caller.role in STAFF else caller.role

    def store(chunks: Iterator[bytes]) -> dict[str, Any]:
        found, stream = typed(chunks, media)  # the type the content shows, checked against the declared one
        acting = _act(caller)
        once = FirstCopy(dossier, caller.role, acting.pop("guard"))  # the same file twice: 409 document_exists
        result = services.dossiers.upload(dossier, once.wrap(stream), name=name, media_type=found, source=source,
                                          doc_type=doc_type, expected_sha256=x_content_sha256, guard=once.guard,
                                          **acting)  # fmt: skip
        return {**result, "media_type": found}

    try:
        result = await streamed_body(request, limit, "a document", store, holder=caller.id)
    except DocumentExistsError as exc:  # the same file again: nothing added, the first one answered
        response.status_code = 200
        return Uploaded(**await asyncio.to_thread(first_answer, services, dossier, exc))
    return Uploaded(**uploaded_answer(dossier, result))


async def streamed_body(
    request: Request, limit: int, what: str, consume: Callable[[Iterator[bytes]], T], *, holder: str
) -> T:
    """Hand the request body, as it arrives, to ``consume`` in a body thread (api/streaming.py); its result.
    More than ``limit`` bytes is refused (413); a body cut off reaches ``consume`` as an error; one more
    upload than ``holder`` (a principal) may have in flight is refused (429)."""

    async def body() -> AsyncIterator[bytes]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLargeError(f"{what} may have at most {limit} bytes")
            if chunk:
                yield chunk

    slots: BodySlots = request.app.state.bodies
    with slots.hold(holder):
        return await consume_in_thread(body(), consume, slots.executor)


@router.get("/{dossier}/files/{sha256}", response_class=StreamingResponse, openapi_extra=roles(*READERS),
            responses={200: {"description": "the file's bytes, with its media type", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
def download(dossier: str, sha256: str, caller: CallerDep, services: ServicesDep) -> StreamingResponse:
    """Download one of the dossier's files (streamed). The read is recorded."""
    found = usecases.download(services.dossiers, dossier, check_digest(sha256), court=services.config.court,
                              **_act(caller))  # fmt: skip
    return StreamingResponse(found.chunks, media_type=found.media_type,
                             headers=download_headers(found.name, found.media_type, found.size))  # fmt: skip


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
async def archive(dossier: str, body: Archive, caller: CallerDep, services: ServicesDep) -> Written:
    """Archive (归档): run the four-property check (四性检测); if it passes, write the archive package
    (BagIt, with the report) into the blob store, lock it and every file for the retention period,
    and record its hash. A failing check blocks archiving; the report is the error's detail."""
    version = await usecases.archive(services.sealer, dossier, retention=body.retention,
                                     court_name=services.config.name, log_key=services.signer.verifier,
                                     **_act(caller))  # fmt: skip
    return Written(dossier=str(UUID(dossier)), version=version)


@router.get(
    "/{dossier}/receipts/{version}",
    response_model=ReceiptDocument,
    response_model_exclude_unset=True,
    openapi_extra=roles(*READERS),
)
async def receipt(dossier: str, version: int, caller: CallerDep, services: ServicesDep) -> ReceiptDocument:
    """The receipt (存证凭证) of one event, once sealed (waits up to two seconds for the sequencer)."""
    return receipt_document(await _receipt(services, caller, dossier, version))


TLOG_PROOF_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "C2SP tlog-proof, leaf as extra"}
}


@router.get("/{dossier}/receipts/{version}/tlog-proof", response_class=Response, openapi_extra=roles(*READERS),
            responses=TLOG_PROOF_TEXT)  # fmt: skip
async def tlog_proof(dossier: str, version: int, caller: CallerDep, services: ServicesDep) -> PlainTextResponse:
    """The same receipt as C2SP tlog-proof text (save as ``.tlog-proof``; sifa-verify reads both)."""
    text = (await _receipt(services, caller, dossier, version)).to_tlog_proof()
    return PlainTextResponse(text, media_type="text/plain; charset=utf-8")


async def _receipt(services: Services, caller: Caller, dossier: str, version: int) -> Receipt:
    return await usecases.event_receipt(services.sealer, dossier, version, role=caller.role, principal=caller.actor,
                                        guard=open_to(caller))  # fmt: skip
