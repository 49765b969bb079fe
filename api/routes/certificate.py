"""存证证书: a printable PDF certificate of one sealed event, its receipt attached (docs/certificate.md)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import CallerDep, Services, ServicesDep, roles
from api.principals import READERS, Caller
from api.routes.dossiers import _dossier, _receipt
from dossier.certificate import render
from dossier.domain import Dossier
from evidence.certificate import CASE_NUMBER, COURT, DECLARED_FILE_NAME, lines
from ledger.cosignature import cosigners
from ledger.errors import TreeSizeError
from ledger.note import Note
from ledger.receipt import verify_receipt
from storage.blobstore import check_digest

router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the certificate"}
}  # fmt: skip
FILE_EVENTS = ("DocumentUploaded", "DocumentReceived", "EvidenceSubmitted")


@router.get("/{dossier}/receipts/{version}/certificate", response_class=Response, responses=PDF,
            openapi_extra=roles(*READERS))  # fmt: skip
async def by_event(dossier: str, version: int, caller: CallerDep, services: ServicesDep) -> Response:
    """The 存证证书 (PDF, A4, Chinese) of one sealed event of the dossier, its receipt embedded."""
    return await _certificate(services, caller, dossier, version)


@router.get("/{dossier}/files/{sha256}/certificate", response_class=Response, responses=PDF,
            openapi_extra=roles(*READERS))  # fmt: skip
async def by_file(dossier: str, sha256: str, caller: CallerDep, services: ServicesDep) -> Response:
    """The 存证证书 of the event that first recorded this file in the dossier (upload, receipt or evidence)."""
    check_digest(sha256)
    version = await asyncio.to_thread(_first_recorded, services, caller, dossier, sha256)
    return await _certificate(services, caller, dossier, version)


def _first_recorded(services: Services, caller: Caller, dossier: str, sha256: str) -> int:
    d = _dossier(services, caller, dossier)
    hidden = d.hidden_from(caller.role)
    for e in services.dossiers.repository.event_store.get(d.id, lte=d.version):
        body = vars(e)
        if type(e).__name__ in FILE_EVENTS and body.get("sha256") == sha256 and body.get("document_id") not in hidden:
            return e.originator_version
    raise TreeSizeError(f"no file {sha256} in this dossier")


async def _certificate(services: Services, caller: Caller, dossier: str, version: int) -> Response:
    receipt = await _receipt(services, caller, dossier, version)  # the caller's access and the 副卷 rule
    return await asyncio.to_thread(_rendered, services, dossier, version, receipt)


def _rendered(services: Services, dossier: str, version: int, receipt: Any) -> Response:
    log_keys = [services.signer.verifier]
    proved = verify_receipt(receipt, log_keys)  # never print what does not verify, even our own
    witnesses = cosigners(Note.from_text(receipt.checkpoint), services.sealer.witnesses)
    d = services.dossiers.get(dossier)
    declared = {COURT: services.config.name, CASE_NUMBER: d.case_number}
    name = _document_name(d, services, version)
    if name:
        declared[DECLARED_FILE_NAME] = name
    printed = lines(proved, witnesses, declared)
    sha = printed.verified.get("文件 SHA-256")
    query = {"record": printed.verified["存证编号"], **({"sha256": sha} if sha else {"leaf": proved.leaf_hash.hex()})}
    # The printed link is SIFA_PUBLIC_URL's, never the request's Host (a client's choice); unset, none.
    base = services.settings.public_url
    url = f"{base}/verify?{urlencode(query)}" if base else None
    pdf = render(printed, receipt.to_json().encode(), url, court_name=services.config.name, signer=services.signer)
    number = printed.verified["证书编号"]
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'})  # fmt: skip


def _document_name(d: Dossier, services: Services, version: int) -> str | None:
    """The name the court registered for the file an event names, if any."""
    [e] = services.dossiers.repository.event_store.get(d.id, gt=version - 1, lte=version)
    body = vars(e)
    doc = d.documents.get(str(body.get("document_id")))
    name = doc.get("name") if doc else body.get("name")
    return name if isinstance(name, str) else None
