"""送达: record a service of a court document, and let whoever holds the document check it (docs/service.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import CallerDep, ServicesDep, roles
from api.routes.dossiers import _act, _when
from api.routes.page import HEADERS, HTML, _static
from dossier import service
from dossier.fields import LIMITS

router = APIRouter(tags=["service"])


class ServiceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(max_length=LIMITS["document id"], description="the served document (one of the dossier's)")
    channel: str = Field(pattern="^(电子送达平台|短信|电子邮件|邮寄)$", examples=["电子送达平台"])
    tracking_number: str | None = Field(None, max_length=LIMITS["tracking number"], description="邮寄 only")
    sent_at: AwareDatetime
    delivered_at: AwareDatetime | None = None
    read_at: AwareDatetime | None = None
    party: int = Field(ge=0, le=10_000, strict=True, description="the recipient: index into the dossier's parties")
    agent: str | None = Field(None, max_length=LIMITS["agent name"], description="served on the party's 代理人")
    receipt_document_id: str | None = Field(None, max_length=LIMITS["document id"], description="the 送达回执")


class ServiceWritten(BaseModel):
    dossier: str
    version: int
    service_code: str = Field(description="送达码: print it on the served document; it opens the recipient's identity")


class ServiceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the served document")
    code: str | None = Field(None, max_length=64, description="the 送达码 printed on the document")


class ServiceFound(BaseModel):
    log: str
    leaf_index: int
    record_id: str = Field(description="存证编号 of the service record")
    recorded_at: str
    channel: str
    sent_at: str
    delivered_at: str | None
    read_at: str | None
    receipt_sha256: str | None = Field(description="SHA-256 of the 送达回执")
    recipient_commitment: str = Field(description="the recipient's identity as the leaf commits to it")
    recipient: str | None = Field(description="who was served: only for the 送达码 that opens the commitment")
    tracking_number: str | None = None


class ServiceAnswer(BaseModel):
    sha256: str
    court: str
    served: bool
    services: list[ServiceFound]


def _opt(value: datetime | None) -> str | None:
    return _when(value) if value is not None else None


@router.post("/v1/dossiers/{dossier}/service-records", response_model=ServiceWritten, status_code=201,
             openapi_extra=roles("clerk"))  # fmt: skip
async def record(dossier: str, body: ServiceRecord, caller: CallerDep, services: ServicesDep) -> ServiceWritten:
    """Record a 送达 of one of the dossier's documents; answers the 送达码 to print on it."""
    pending = service.record(services.dossiers, dossier, document_id=body.document_id, channel=body.channel,
                             tracking_number=body.tracking_number, sent_at=_when(body.sent_at),
                             delivered_at=_opt(body.delivered_at), read_at=_opt(body.read_at), party=body.party,
                             agent=body.agent, receipt_document_id=body.receipt_document_id,
                             **_act(caller))  # fmt: skip
    done: dict[str, Any] = await asyncio.wrap_future(services.dossiers.enqueue(pending))
    return ServiceWritten(dossier=dossier, **done)


@router.post("/v1/service/check", response_model=ServiceAnswer, openapi_extra=roles("public"))
def check(body: ServiceQuery, services: ServicesDep) -> ServiceAnswer:
    """Was the document with this SHA-256 served by this court — when, how, delivered and read when?
    The recipient is named only for the 送达码 printed on the document. Sealed records only."""
    found = service.lookup(services.dossiers, services.log, body.sha256, body.code)
    return ServiceAnswer(sha256=body.sha256, court=services.config.name, served=bool(found),
                         services=[ServiceFound(**f) for f in found])  # fmt: skip


@router.get("/service", response_class=HTMLResponse, responses=HTML, openapi_extra=roles("public"))
def page() -> HTMLResponse:
    """送达核验: choose a served document (hashed in the browser), optionally type its 送达码."""
    return HTMLResponse(_static("service.html"), headers=HEADERS)


@router.get("/service/service.js", response_class=Response,
            responses={200: {"content": {"text/javascript": {"schema": {"type": "string"}}}}},
            openapi_extra=roles("public"))  # fmt: skip
def script() -> Response:
    """The 送达核验 page's script."""
    return Response(_static("service.js"), media_type="text/javascript; charset=utf-8",
                    headers={**HEADERS, "Cache-Control": "max-age=300"})  # fmt: skip
