"""Finding dossiers and people: ``GET /v1/dossiers`` (search, cursor pages) and the principals' list."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.deps import CallerDep, Services, ServicesDep, roles
from api.node import private_file
from api.principals import ForbiddenError
from dossier.errors import EventStoreUnavailableError, InvalidDossierInputError
from dossier.fields import utc
from dossier.index import MAX_LIMIT, STATUSES, DossierIndex
from dossier.index import Query as IndexQuery

router = APIRouter(prefix="/v1", tags=["finding"])
STAFF = ("clerk", "judge", "archivist")
INDEX_FILE = "dossier-index.sqlite3"
BEIJING = timezone(timedelta(hours=8), "CST")
_made = threading.Lock()


class DossierSummary(BaseModel):
    id: str
    case_number: str = Field(examples=["（2026）京0105民初123号"])
    case_type: str
    status: str = Field(examples=list(STATUSES))
    court: str = Field(description="the court holding the dossier")
    opened_at: str = Field(description="UTC")
    changed_at: str = Field(description="UTC: the last change of status")
    url: str


class DossierList(BaseModel):
    dossiers: list[DossierSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


def dossier_index(request: Request, services: Services) -> DossierIndex:
    """The node's dossier index, made on first use and caught up with the event store."""
    index: DossierIndex | None = getattr(request.app.state, "dossier_index", None)
    if index is None:
        with _made:
            index = getattr(request.app.state, "dossier_index", None)
            if index is None:
                key = services.dossiers.env.get("CIPHER_KEY")  # events are always encrypted (api/node.py)
                if not key:
                    raise EventStoreUnavailableError("the event store has no cipher key: the dossier index needs it")
                secret = str(key).encode()
                index = DossierIndex(private_file(services.settings.data_dir / INDEX_FILE), secret)
                request.app.state.dossier_index = index
    index.catch_up(services.dossiers)
    return index


DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _day(text: str | None, *, after: bool = False) -> str | None:
    """The start of a calendar day in Beijing time (``after``: of the day after it), as UTC."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text) + timedelta(days=1 if after else 0)
        return utc(datetime.combine(day, time(0), BEIJING))
    except ValueError:
        raise InvalidDossierInputError(f"{text!r} is not a day of the calendar (2026-11-22)") from None
    except OverflowError:  # 0001-01-01 in Beijing is before year 1 in UTC; the day after 9999-12-31 is none
        raise InvalidDossierInputError(f"{text!r} is outside the days a dossier can be opened on") from None


@router.get("/dossiers", response_model=DossierList, openapi_extra=roles(*STAFF, "lawyer", "party"))
def list_dossiers(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    case_number: Annotated[str | None, Query(max_length=60, description="exact, however typed")] = None,
    party: Annotated[str | None, Query(max_length=200, description="a party's full name (staff only)")] = None,
    status: Annotated[str | None, Query(pattern=f"^({'|'.join(STATUSES)})$")] = None,
    opened_from: Annotated[str | None, Query(pattern=DAY, description="first day (Beijing time), inclusive")] = None,
    opened_to: Annotated[str | None, Query(pattern=DAY, description="last day (Beijing time), inclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> DossierList:
    """The dossiers this court holds, newest opened first, one page at a time. Searches go through
    keyed hashes, never plaintext (party data is encrypted at rest): exact case number (brackets,
    spaces and leading zeros as typed do not matter) or a party's exact name. A lawyer or party sees
    only the dossiers they are admitted to, and may not search by party name."""
    if party is not None and caller.role not in STAFF:
        raise ForbiddenError("only court staff search by a party's name")
    q = IndexQuery(holder=services.config.court, case_number=case_number, party=party, status=status,
                   opened_from=_day(opened_from), opened_to=_day(opened_to, after=True), cursor=cursor, limit=limit,
                   within=None if caller.role in STAFF else list(caller.dossiers))  # fmt: skip
    page = dossier_index(request, services).search(q)
    return DossierList(dossiers=[DossierSummary(**vars(e) | {"court": e.holder}, url=f"/v1/dossiers/{e.id}")
                                 for e in page.entries], next_cursor=page.next_cursor)  # fmt: skip


class PrincipalView(BaseModel):
    id: str
    name: str
    role: str
    court: str
    issued_by: str
    revoked: bool
    dossiers: list[str] = Field(description="the dossiers a lawyer or party is admitted to")


class PrincipalList(BaseModel):
    principals: list[PrincipalView]


@router.get("/principals", response_model=PrincipalList, openapi_extra=roles("administrator"))
def list_principals(caller: CallerDep, services: ServicesDep) -> PrincipalList:
    """Every credential issued on this node (never the credential itself), oldest first."""
    return PrincipalList(principals=[PrincipalView(**p) for p in services.principals.listed()])


@router.get("/principals/{principal}", response_model=PrincipalView, openapi_extra=roles("administrator"))
def show_principal(principal: str, caller: CallerDep, services: ServicesDep) -> PrincipalView:
    """One principal: name, role, whether revoked, the dossiers it is admitted to."""
    return PrincipalView(**services.principals.shown(principal))


class Me(BaseModel):
    id: str
    name: str
    role: str
    court: str
    dossiers: list[str] = Field(description="for a lawyer or party: the dossiers admitted to")


@router.get("/me", response_model=Me, openapi_extra=roles("administrator", *STAFF, "lawyer", "party"))
def me(caller: CallerDep) -> Me:
    """Who the credential belongs to (the console shows what the role may do)."""
    return Me(id=caller.id, name=caller.name, role=caller.role, court=caller.court, dossiers=list(caller.dossiers))
