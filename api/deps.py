"""The dependencies handlers use: the node's services (api/composition.py), the caller, a peer."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.composition import Services as Services  # re-exported: what handlers are given
from api.principals import AuthError, Caller, ForbiddenError, NotAdmittedError
from dossier.domain import PARTY_ROLES, Dossier
from dossier.errors import DossierNotFoundError
from ledger.checkpoint import Checkpoint
from ledger.errors import TreeSizeError
from ledger.note import Note

PUBLIC = "public"


async def _services(request: Request) -> Services:  # async: no thread hop for a lookup
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


def roles(*allowed: str) -> dict[str, object]:
    """Route metadata naming the roles allowed (``"public"``: no credential needed)."""
    return {"x-roles": list(allowed)}


def api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    """Every APIRoute of an app or router, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)


def route_roles(route: APIRoute) -> list[str]:
    extra = route.openapi_extra or {}
    found = extra.get("x-roles")
    return list(found) if isinstance(found, list) else []


CALLER = "sifa.caller"  # scope key: the caller the edge (api/edge.py) checked before the body was read


async def authorize(services: Services, authorization: str | None, allowed: list[str]) -> Caller:
    """The caller a bearer ``Authorization`` header names, if its role is ``allowed``. Raises AuthError,
    ForbiddenError."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive (RFC 7235 2.1)
        raise AuthError("this request needs a bearer credential")
    token = token.strip()
    # Usually answered from memory; otherwise a store read, off the event loop.
    caller = services.principals.remembered(token)
    if caller is None:
        caller = await _authenticate(services, token)
    if caller.role not in allowed:  # a route with no rule allows nobody
        raise ForbiddenError(f"a {caller.role} may not do this")
    return caller


async def _caller(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <credential>")] = None,
) -> Caller:
    checked = request.scope.get(CALLER)
    if isinstance(checked, Caller):  # the edge checked it, before the body
        return checked
    route = request.scope.get("route")
    allowed = route_roles(route) if isinstance(route, APIRoute) else []
    services: Services = request.app.state.services  # not a dependency: each one costs every request
    return await authorize(services, authorization, allowed)


async def _authenticate(services: Services, token: str) -> Caller:
    """One store read per credential at a time. When a busy client's credential is due to be read
    again (principals remember a caller for a few seconds), its requests in flight all missed at
    once and each read it: a burst of thread hand-offs that was the API's worst latency."""
    running = services.lookups.get(token)
    if running is None:
        running = asyncio.ensure_future(run_in_threadpool(services.principals.authenticate, token))
        services.lookups[token] = running
        running.add_done_callback(lambda _: services.lookups.pop(token, None))
    return await asyncio.shield(running)  # one caller giving up does not cancel the others' read


CallerDep = Annotated[Caller, Depends(_caller)]


async def _peer(request: Request) -> Caller:
    """A court calling with a signed request (api/peers.py); bearer credentials do not serve here."""
    services: Services = request.app.state.services
    if "sifa-signature" not in request.headers and request.headers.get("authorization"):
        raise ForbiddenError("only another court's signed request may do this")
    body = await request.body()
    target = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return services.gate.check(request.method, target, hashlib.sha256(body).hexdigest(), request.headers)


PeerDep = Annotated[Caller, Depends(_peer)]


def open_to(caller: Caller) -> Callable[[Dossier], None]:
    """The check that a dossier is open to ``caller``, to run on the dossier a command or use case
    reads. A lawyer or party not admitted to it is answered as if it did not exist (DossierNotFoundError:
    dossier ids are computable from case numbers, so a 403 would tell which cases exist); anyone else,
    NotAdmittedError."""

    def guard(d: Dossier) -> None:
        if not caller.may_read(str(d.id), d.holder):
            if caller.role in PARTY_ROLES:
                raise DossierNotFoundError(f"no dossier {d.id}")
            raise NotAdmittedError("this dossier is not open to you")

    return guard


def acting(caller: Caller) -> dict[str, Any]:
    """A command's ``actor``, ``role`` and ``guard`` for ``caller``."""
    return {"actor": caller.actor, "role": caller.role, "guard": open_to(caller)}


def readable(services: Services, caller: Caller, dossier: str, *, copy: bool = True) -> Dossier:
    """The dossier, if it is open to ``caller``. Raises DossierNotFoundError, NotAdmittedError."""
    d = services.dossiers.get(dossier, copy=copy)
    open_to(caller)(d)
    return d


def latest_checkpoint(services: Services) -> tuple[Checkpoint, str]:
    """The log's latest signed checkpoint, parsed and as its note text. Raises TreeSizeError when none is."""
    kept = services.log.store.checkpoint()
    if kept is None:
        raise TreeSizeError("the log has no checkpoint yet")
    return Checkpoint.from_text(Note.from_text(kept[1]).text), kept[1]
