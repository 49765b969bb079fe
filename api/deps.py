"""Services the app builds at start-up, and the dependencies handlers use."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.node import NodeConfig
from api.peers import PeerGate
from api.principals import AuthError, Caller, ForbiddenError, Principals
from api.settings import Settings
from dossier.application import DossierApp
from dossier.courts import CourtRegistry
from dossier.sealer import Sealer
from ledger.gm import SM2Signer
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.trust import Trust
from ledger.witness import Witness
from storage.blobstore import BlobStore

PUBLIC = "public"


@dataclass
class Services:
    """What the app builds in its lifespan and the handlers use."""

    config: NodeConfig
    settings: Settings
    log: MerkleLog
    signer: Ed25519Signer | SM2Signer
    dossiers: DossierApp
    sealer: Sealer
    principals: Principals
    blobs: BlobStore
    courts: CourtRegistry
    witness: Witness | None = None
    peers: Trust | None = None
    gate: PeerGate = field(default_factory=lambda: PeerGate(None, ""))  # no peers: every signed request is refused
    lookups: dict[str, asyncio.Future[Caller]] = field(default_factory=dict)  # credential reads under way, by token


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
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("this request needs a bearer credential")
    token = authorization.removeprefix("Bearer ").strip()
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
