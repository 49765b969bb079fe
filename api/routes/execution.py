"""执行 operations with 闭环 approval, their audit, and 结案 and status of any dossier (docs/execution.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CallerDep, Services, ServicesDep, roles
from api.principals import READERS
from api.routes.dossiers import _act, _dossier
from dossier import execution
from dossier.fields import LIMITS, MAX_SIZE

router = APIRouter(prefix="/v1/dossiers", tags=["execution"])
OFFICERS = ("judge", "clerk")  # 执行法官, 书记员


class OpenExecution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judgment_dossier: str = Field(max_length=64, description="the dossier whose judgment is enforced")
    judgment_leaf: int = Field(ge=0, le=2**53 - 1, strict=True, description="a leaf of that dossier (the judgment's)")


class EvidenceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    size: int = Field(ge=0, le=MAX_SIZE, strict=True)


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(pattern="^(" + "|".join(execution.KINDS) + ")$", examples=["冻结"])
    amount_fen: int | None = Field(None, ge=1, le=execution.MAX_AMOUNT_FEN, strict=True, description="分")
    account: str | None = Field(None, max_length=LIMITS["account"], description="a commitment in the log")
    party: int | None = Field(None, ge=0, le=10_000, strict=True)
    document_id: str | None = Field(None, max_length=LIMITS["document id"])
    files: list[EvidenceFile] | None = Field(None, max_length=execution.MAX_FILES, description="执法取证")
    closure_method: str | None = Field(None, max_length=20, description="报结: 结案方式")
    note: str = Field("", max_length=LIMITS["description"])


class Operated(BaseModel):
    dossier: str
    version: int
    operation_id: str
    effective: bool = Field(description="false for 冻结, 扣划, 案款发放 until another principal approves")


class Closure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(max_length=20, examples=["判决"], description="结案方式")
    date: str = Field(pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["2026-11-30"])


class Written(BaseModel):
    dossier: str
    version: int


async def _recorded(services: Services, pending: Any) -> Any:
    return await asyncio.wrap_future(services.dossiers.enqueue(pending))


def _leaf_dossier(services: Services, index: int) -> str | None:
    """The dossier of leaf ``index``: by the node's own label of it (a sifa-leaf/2 leaf names its
    dossier only by a keyed reference)."""
    if not 0 <= index < services.log.size:
        return None
    event = next((label.split(":") for label in services.log.labels_at(index) if label.startswith("event:")), None)
    return event[1] if event is not None else None


@router.post("/{dossier}/execution", response_model=Written, status_code=201, openapi_extra=roles(*OFFICERS))
async def open_execution(dossier: str, body: OpenExecution, caller: CallerDep, services: ServicesDep) -> Written:
    """Open the execution of a 执行 dossier, linked to the judgment's dossier and leaf."""
    pending = execution.open_execution(dossier, judgment_dossier=body.judgment_dossier,
                                       judgment_leaf=body.judgment_leaf,
                                       leaf_dossier=lambda i: _leaf_dossier(services, i), **_act(caller))  # fmt: skip
    return Written(dossier=dossier, version=await _recorded(services, pending))


@router.post("/{dossier}/execution/operations", response_model=Operated, status_code=201,
             openapi_extra=roles(*OFFICERS))  # fmt: skip
async def operate(dossier: str, body: Operation, caller: CallerDep, services: ServicesDep) -> Operated:
    """Record an execution operation; a sensitive one (冻结, 扣划, 案款发放) waits for approval."""
    files = [f.model_dump() for f in body.files] if body.files is not None else None
    pending = execution.operate(dossier, kind=body.kind, amount_fen=body.amount_fen, account=body.account,
                                party=body.party, document_id=body.document_id, files=files,
                                closure_method=body.closure_method, note=body.note, **_act(caller))  # fmt: skip
    return Operated(dossier=dossier, **await _recorded(services, pending))


@router.post("/{dossier}/execution/operations/{operation}/approve", response_model=Written,
             openapi_extra=roles(*OFFICERS))  # fmt: skip
async def approve(dossier: str, operation: str, caller: CallerDep, services: ServicesDep) -> Written:
    """闭环: approve a sensitive operation; only a principal other than the one who recorded it may."""

    # 闭环 between persons: a second credential issued under the same name is the same person.
    def same_person(recorder: str) -> bool:
        return services.principals.name_of(recorder) == caller.name

    pending = execution.approve(dossier, operation_id=operation, same_person=same_person, **_act(caller))
    return Written(dossier=dossier, version=await _recorded(services, pending))


@router.get("/{dossier}/execution/audit", openapi_extra=roles("judge", "clerk", "archivist"))
def audit(dossier: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """Every operation of the execution, who recorded and who approved it, their leaves, and any
    sensitive operation in effect without another principal's approval (``violations``: none)."""
    d = _dossier(services, caller, dossier, copy=False)
    return execution.audit_dossier(services.dossiers, services.log, d.id)


@router.post("/{dossier}/closure", response_model=Written, openapi_extra=roles(*OFFICERS))
async def close(dossier: str, body: Closure, caller: CallerDep, services: ServicesDep) -> Written:
    """结案: close the case, with its 结案方式 and date."""
    pending = execution.close(dossier, method=body.method, date=body.date, **_act(caller))
    return Written(dossier=dossier, version=await _recorded(services, pending))


@router.get("/{dossier}/status", openapi_extra=roles(*READERS))
def status(dossier: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The case's status (open or 结案, how and when; an execution's progress), for whoever may read it."""
    return execution.status(_dossier(services, caller, dossier))
