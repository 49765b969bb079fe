"""Between courts: dossier packages, remote retrieval (远程调阅) and import, the four-property check.

- ``GET /v1/peer/dossiers/{id}/package``: a court's signed request (api/peers.py) for a dossier
  transferred to it; the retrieval is recorded in this court's log before the first byte.
- ``GET /v1/peer/dossiers/{id}/files/{sha256}``: the court this node received a dossier from takes
  one of its files back, to repair its own corrupt copy (fixity, api/peer_repair.py); recorded here.
- ``POST /v1/retrievals``: this court fetches a dossier transferred to it from the lower
  court's node, verifies every byte as it streams, and imports it as a received dossier.
- ``POST /v1/received``: the same import from a package sent as the request body.
- ``GET /v1/dossiers/{id}/package``: a court's own reader takes the package (recorded).
- ``GET /v1/dossiers/{id}/inspection``: the 四性检测 report, as archiving would run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import CallerDep, PeerDep, Services, ServicesDep, acting, open_to, roles
from api.node import COURT_CODE
from api.peers import (
    ChunkReader,
    NotReceivedFromYouError,
    NotTransferredToYouError,
    PeersNotConfiguredError,
    fetcher,
)
from api.principals import READERS, STAFF
from api.routes.dossiers import streamed_body
from api.schemas import ImportedDossier, InspectionReport, imported_dossier
from dossier import usecases
from dossier.domain import Dossier
from dossier.package import PackagePlan
from dossier.transfer import Imported, import_package
from ledger.trust import Trust
from storage.blobstore import check_digest

router = APIRouter(tags=["transfer"])

TAR = "application/x-tar"
TAR_BODY: dict[int | str, dict[str, Any]] = {200: {"content": {TAR: {"schema": {"type": "string", "format": "binary"}}},
                                    "description": "the dossier package (BagIt, tar), streamed"}}  # fmt: skip
PEER_ERRORS: dict[int | str, dict[str, Any]] = {
    502: {
        "description": "the other court's node refused (its code and message are in the detail), or its "
        "certificate does not verify (peer_certificate_invalid)"
    },
}


class RetrievalRequest(BaseModel):
    from_court: str = Field(pattern=f"^{COURT_CODE.pattern}$", examples=["1101-0105"])
    dossier: UUID = Field(examples=["6454039c-0791-518e-bc56-316fcd078efb"])


def _streamed(plan: PackagePlan, services: Services) -> StreamingResponse:
    name = f"{plan.dossier}.tar"
    return StreamingResponse(plan.stream(services.blobs), media_type=TAR,
                             headers={"Content-Length": str(plan.size),
                                      "Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def _transferred_to(court: str) -> Any:
    def guard(d: Dossier) -> None:
        if not any(t["to_court"] == court for t in d.transfers):
            raise NotTransferredToYouError(f"dossier {d.case_number} was not transferred to court {court}")

    return guard


@router.get("/v1/peer/dossiers/{dossier}/package", response_class=StreamingResponse, responses=TAR_BODY,
            openapi_extra=roles("court"))  # fmt: skip
async def peer_package(dossier: str, peer: PeerDep, services: ServicesDep) -> StreamingResponse:
    """Another court retrieves a dossier transferred to it (远程调阅); the retrieval is an event here."""
    plan = await usecases.package(services.sealer, lambda: services.dossiers.retrieve(
        dossier, by_court=peer.court, by=peer.id, reason="远程调阅", actor=peer.actor, role=peer.role,
        guard=_transferred_to(peer.court)), court_name=services.config.name, purpose="远程调阅",
        role="receiving_court")  # fmt: skip
    return _streamed(plan, services)


def _received_from(origin: str) -> Any:
    def guard(d: Dossier) -> None:
        received = d.received
        if received is None or received.get("from_origin") != origin:
            raise NotReceivedFromYouError(f"this node did not receive dossier {d.id} from {origin}")

    return guard


FILE_BODY: dict[int | str, dict[str, Any]] = {200: {"description": "the file's bytes, streamed (verified as they go)",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}  # fmt: skip


@router.get("/v1/peer/dossiers/{dossier}/files/{sha256}", response_class=StreamingResponse, responses=FILE_BODY,
            openapi_extra=roles("court"))  # fmt: skip
def peer_file(dossier: str, sha256: str, peer: PeerDep, services: ServicesDep) -> StreamingResponse:
    """The court this node received the dossier from takes one of its files back, to repair its own
    copy (fixity); the read is an event here, naming that court."""
    found = usecases.download(services.dossiers, dossier, check_digest(sha256), court=peer.court, role=peer.role,
                              actor=peer.actor, guard=_received_from(peer.id), reason="修复")  # fmt: skip
    return StreamingResponse(found.chunks, media_type="application/octet-stream",
                             headers={"Content-Length": str(found.size)})  # fmt: skip


@router.get("/v1/dossiers/{dossier}/package", response_class=StreamingResponse, responses=TAR_BODY,
            openapi_extra=roles(*READERS))  # fmt: skip
async def own_package(dossier: str, caller: CallerDep, services: ServicesDep) -> StreamingResponse:
    """The dossier as a package (BagIt), for ``sifa-verify --dossier``; party data only for court staff.
    A lawyer's or party's copy withholds the 副卷's events (leaf hash and proof only) and files."""
    plan = await usecases.package(services.sealer, lambda: services.dossiers.retrieve(
        dossier, by_court=services.config.court, by=caller.actor, reason="导出卷宗包", **acting(caller)),
        court_name=services.config.name, purpose="调阅", personal=caller.role in STAFF,
        court=caller.role in STAFF, role="staff" if caller.role in STAFF else caller.role,
        principal=caller.actor)  # fmt: skip
    return _streamed(plan, services)


@router.get("/v1/dossiers/{dossier}/inspection", response_model=InspectionReport, openapi_extra=roles(*STAFF))
async def inspection(dossier: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The four-property check (四性检测: 真实性, 完整性, 可用性, 安全性) archiving would run now."""
    return await usecases.inspection(services.sealer, dossier, services.signer.verifier, guard=open_to(caller))


def _peers(services: Services) -> Trust:
    if services.peers is None:
        raise PeersNotConfiguredError("this node has no peer courts configured (SIFA_PEERS)")
    return services.peers


@router.post("/v1/retrievals", response_model=ImportedDossier, status_code=201, responses=PEER_ERRORS,
             openapi_extra=roles("clerk", "judge"))  # fmt: skip
def retrieve(body: RetrievalRequest, caller: CallerDep, services: ServicesDep) -> ImportedDossier:
    """Retrieve a dossier transferred to this court from the lower court's node, verify, import."""
    fetch = fetcher(services.signer, services.settings.tls_ca)
    return imported_dossier(usecases.retrieve_from(services.dossiers, _peers(services), body.from_court,
                                                   str(body.dossier), fetch=fetch, actor=caller.actor))  # fmt: skip


@router.post("/v1/received", response_model=ImportedDossier, status_code=201,
             openapi_extra={**roles("clerk", "judge", "archivist"), "requestBody": {
                 "required": True, "content": {TAR: {"schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
async def received(request: Request, caller: CallerDep, services: ServicesDep,
                   content_type: Annotated[str, Header()] = TAR) -> ImportedDossier:  # fmt: skip
    """Import a dossier package sent as the body (e.g. carried on media), verified as it streams."""
    trust = _peers(services)

    def consume(chunks: Iterator[bytes]) -> Imported:
        return import_package(services.dossiers, ChunkReader(chunks), logs=trust.logs, witnesses=trust.witnesses,
                              quorum=trust.quorum, actor=caller.actor)  # fmt: skip

    imported = await streamed_body(request, services.settings.max_package_bytes, "a package", consume, holder=caller.id)
    return imported_dossier(imported)
