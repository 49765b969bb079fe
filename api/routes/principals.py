"""Credentials: the administrator issues them; clerks admit lawyers and parties to a dossier."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CallerDep, ServicesDep, roles

router = APIRouter(prefix="/v1/principals", tags=["principals"])


class NewPrincipal(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["书记员 李明"])
    role: str = Field(examples=["clerk"], pattern="^(administrator|clerk|judge|archivist|lawyer|party)$")


class IssuedPrincipal(BaseModel):
    id: str
    role: str
    token: str = Field(description="the bearer credential; shown once, stored only as a hash")


class Admission(BaseModel):
    dossier: str = Field(examples=["6454039c-0791-518e-bc56-316fcd078efb"], max_length=64)


@router.post("", response_model=IssuedPrincipal, status_code=201, openapi_extra=roles("administrator"))
def issue(body: NewPrincipal, caller: CallerDep, services: ServicesDep) -> IssuedPrincipal:
    """Issue a credential for a court user, lawyer or party."""
    ident, token = services.principals.issue(name=body.name, role=body.role, court=services.config.court,
                                             issued_by=caller.actor, actor=caller.id)  # fmt: skip
    return IssuedPrincipal(id=ident, role=body.role, token=token)


@router.post("/{principal}/admissions", status_code=204, openapi_extra=roles("administrator", "clerk"))
def admit(principal: str, body: Admission, caller: CallerDep, services: ServicesDep) -> None:
    """Admit a lawyer or party to one dossier (they see nothing else)."""
    services.dossiers.get(body.dossier)
    services.principals.admit(principal, body.dossier, caller.actor, actor=caller.id)


@router.delete("/{principal}", status_code=204, openapi_extra=roles("administrator"))
def revoke(principal: str, caller: CallerDep, services: ServicesDep) -> None:
    """Revoke a credential; it stops working at once. The court's last administrator is never revoked
    (409 ``last_administrator``): issue another first; a lost credential is replaced by ``sifa admin``."""
    services.principals.revoke(principal, caller.actor, actor=caller.id)
