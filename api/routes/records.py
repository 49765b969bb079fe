"""What a dossier holds, fetched: the 卷内目录, a file's receipt by its hash, the archive package and its report."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import CallerDep, ServicesDep, acting, readable, roles
from api.downloads import download_headers
from api.principals import READERS, STAFF
from api.routes.dossiers import _receipt
from dossier.directory import COLUMNS, UNKNOWN_NOTE, directory, recorded_days
from dossier.errors import UnknownDocumentError, UnknownFileError
from evidence.package import INSPECTION
from evidence.tarstream import tar_members
from storage.blobstore import check_digest

router = APIRouter(prefix="/v1/dossiers", tags=["records"])
MAX_REPORT = 16 << 20  # the tag files before the report: events and proofs of a large dossier


class DirectoryRow(BaseModel):
    no: int = Field(description="序号, 1, 2, … in each volume")
    volume: str
    reference: str = Field(description="文号, as declared; empty if none")
    author: str = Field(description="责任者")
    title: str = Field(description="题名")
    date: str = Field(description="日期, the day recorded, Beijing time")
    pages: str = Field(description="起止页号")
    remarks: str = Field(description="备注")
    first_page: int
    last_page: int
    page_count: int | None = Field(description="null: no page count, counted as one page")
    category: str
    document_id: str
    sha256: str | None
    name: str | None


class Directory(BaseModel):
    case_number: str
    columns: dict[str, str] = Field(description="each key's Chinese column name")
    rule: str = Field(description="how a document without a page count is numbered")
    rows: list[DirectoryRow]


@router.get("/{dossier}/catalogue", response_model=Directory, openapi_extra=roles(*READERS))
def catalogue_table(dossier: str, caller: CallerDep, services: ServicesDep) -> Directory:
    """The 卷内目录 (序号, 文号, 责任者, 题名, 日期, 起止页号, 备注), 正卷 then 副卷 (court staff only).
    The read is recorded."""
    d = services.dossiers.retrieve(dossier, by_court=services.config.court, by=caller.actor, reason="查看卷内目录",
                                   **acting(caller))  # fmt: skip
    days = recorded_days(services.dossiers.repository.event_store.get(d.id, lte=d.version))
    rows = directory(d, services.config.name, d.hidden_from(caller.role), days)
    return Directory(case_number=d.case_number, columns=COLUMNS, rows=[DirectoryRow(**r) for r in rows],
                     rule=f"{UNKNOWN_NOTE}: a document without a page count takes one page")  # fmt: skip


@router.get("/{dossier}/files/{sha256}/receipt", openapi_extra=roles(*READERS))
async def file_receipt(dossier: str, sha256: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The receipt (存证凭证) of the event that recorded this file (its first upload to the dossier):
    its leaf carries the file's SHA-256 and size. Waits up to two seconds for the sequencer."""
    d = readable(services, caller, check_digest(sha256) and dossier)
    hidden = d.hidden_from(caller.role)
    for e in services.dossiers.repository.event_store.get(d.id, lte=d.version):
        body = vars(e)
        uploaded = type(e).__name__ in ("DocumentUploaded", "DocumentReceived") and body.get("sha256") == sha256
        if uploaded and body.get("document_id") not in hidden:
            return (await _receipt(services, caller, dossier, e.originator_version)).to_dict()
    raise UnknownFileError(f"no file {sha256} in this dossier")  # as the download answers: 404


def _archived(services: Any, caller: Any, dossier: str, reason: str) -> tuple[Any, int]:
    d = services.dossiers.retrieve(dossier, by_court=services.config.court, by=caller.actor, reason=reason,
                                   **acting(caller))  # fmt: skip
    if d.archived is None:
        raise UnknownDocumentError(f"dossier {d.case_number} is not archived: it has no archive package")
    sha = d.archived["package_sha256"]
    return d, services.blobs.stat(sha).size


@router.get("/{dossier}/archive/package", response_class=StreamingResponse, openapi_extra=roles(*STAFF),
            responses={200: {"description": "the archive package (a tar)", "content": {
                "application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
def archive_package(dossier: str, caller: CallerDep, services: ServicesDep) -> StreamingResponse:
    """The archive package of record (BagIt, the one whose hash the ``Archived`` event names), streamed
    from the WORM store; ``sifa-verify --dossier`` checks it offline. The read is recorded."""
    d, size = _archived(services, caller, dossier, "下载归档包")
    sha = d.archived["package_sha256"]
    name = f"{d.case_number} 归档包.tar"
    return StreamingResponse(services.blobs.read(sha, size=size), media_type="application/x-tar",
                             headers=download_headers(name, "application/x-tar", size))  # fmt: skip


class _Chunks(io.RawIOBase):
    """A blob's chunks as a readable stream (for the tar reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.left = chunks, b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        while len(self.left) < n or n < 0:
            more = next(self.chunks, b"")
            if not more:
                break
            self.left += more
        out, self.left = (self.left, b"") if n < 0 else (self.left[:n], self.left[n:])
        return out


@router.get("/{dossier}/archive/report", openapi_extra=roles(*STAFF))
def archive_report(dossier: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The 四性检测 report of record: the one inside the archive package (``sifa/inspection.json``),
    as it was when the dossier was archived. The read is recorded."""
    d, size = _archived(services, caller, dossier, "查看四性检测报告")
    stream = services.blobs.read(d.archived["package_sha256"], size=size)
    try:
        for member in tar_members(_Chunks(iter(stream)), size):
            if member.name.endswith(INSPECTION) and member.size <= MAX_REPORT:
                report: dict[str, Any] = json.loads(b"".join(member.chunks()))
                return report
            if member.name.startswith("data/"):  # the tag files come first: no report after a file
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    raise UnknownDocumentError(f"the archive package of {d.case_number} holds no 四性检测 report")
