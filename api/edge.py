"""The node's edge: a request's credential is checked before its body is read, and no body is read
without bound.

FastAPI reads and parses a JSON body before any dependency runs, so a stranger's 60 MB body used to
grow the node by over 100 MB before its missing credential was noticed. This ASGI middleware runs
before the app, for every HTTP request:

1. It finds the request's route (the app's own routes, by path and method).
2. A route that needs a bearer credential (roles other than ``public`` and ``court``) has it checked —
   authenticated, the role allowed — before one byte of the body is received: 401 or 403 otherwise.
   The caller is handed on in the scope, so the route's dependency (``api/deps.py``) does not look it
   up again. Signed node-to-node routes (``court``) keep their own check, over the body's hash.
3. A route that does not stream its own body (uploads, packages and witness requests document a raw
   request body and bound it themselves) has its body read here, at most ``SIFA_MAX_JSON_BYTES``:
   413 by its Content-Length before reading, or as it streams. Then the app is given it.
4. Any body that pauses longer than ``SIFA_BODY_TIMEOUT_SECONDS`` between chunks ends in 408.

Time and size bounds on a request's headers, and the connection limit, are the HTTP server's
(``api/server.py``): they hold before a request reaches any ASGI app.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing.persistence import MapperDeserialisationError, PersistenceError
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import CALLER, PUBLIC, Services, authorize, route_roles
from api.routes.dossiers import PayloadTooLargeError
from ledger.errors import SifaError

Refusal = Callable[[SifaError | PersistenceError | MapperDeserialisationError], JSONResponse]
SIGNED = "court"  # node-to-node routes: a court's signed request (api/peers.py), no bearer credential


class BodyTimeoutError(SifaError):
    """The client stopped sending the request's body."""

    code = "request_timeout"


@dataclass(frozen=True)
class Rule:
    """What the edge does for one route."""

    path: re.Pattern[str]
    methods: frozenset[str]
    roles: tuple[str, ...]
    streams_body: bool  # the route reads its raw body itself, with its own limit

    @property
    def bearer(self) -> bool:
        return PUBLIC not in self.roles and SIGNED not in self.roles


def allowed(app: FastAPI, path: str) -> set[str]:
    """The methods some route of ``app`` answers on ``path`` (HEAD where a public GET is: see Edge)."""
    methods: set[str] = set()
    for rule in rules(app):
        if rule.path.match(path):
            methods |= rule.methods
            if "GET" in rule.methods and not rule.bearer:
                methods.add("HEAD")
    return methods


def rules(app: FastAPI) -> list[Rule]:
    """The edge's rule for every API route of ``app``, in the router's order."""
    found = []
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            streams = "requestBody" in (route.openapi_extra or {})  # a raw body it documents and reads itself
            found.append(Rule(context.path_regex, frozenset(route.methods or ()), tuple(route_roles(route)), streams))
    return found


class RuleIndex:
    """The first rule whose method and path match a request's, as the router finds its route: one
    regular expression per method, the routes' own patterns as its alternatives in the router's order
    (a scan of every route's pattern in Python cost each request more than its route's work)."""

    def __init__(self, found: list[Rule]) -> None:
        self.found = found
        by_method: dict[str, list[int]] = {}
        for i, rule in enumerate(found):
            for method in rule.methods:
                by_method.setdefault(method, []).append(i)
        self._any = {
            method: re.compile("|".join(f"(?P<r{i}>{_alternative(found[i].path.pattern)})" for i in indices))
            for method, indices in by_method.items()
        }

    def find(self, method: str, path: str) -> Rule | None:
        pattern = self._any.get(method)
        match = pattern.match(path) if pattern is not None else None
        return None if match is None or match.lastgroup is None else self.found[int(match.lastgroup[1:])]


def _alternative(pattern: str) -> str:
    """A route's pattern (``^...$``, named groups) as one alternative: unanchored at the start (the
    whole expression is matched from there), its groups not captured (their names repeat)."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern.removeprefix("^"))


class Edge:
    """ASGI middleware: credentials before bodies, bounded bodies (see the module docstring)."""

    def __init__(self, app: ASGIApp, refuse: Refusal) -> None:
        self.app, self.refuse = app, refuse
        self._rules: RuleIndex | None = None

    def _rule(self, scope: Scope) -> Rule | None:
        if self._rules is None:  # routes are all added before the first request
            self._rules = RuleIndex(rules(scope["app"]))
        return self._rules.find(scope["method"], scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = getattr(scope["app"].state, "services", None) if scope["type"] == "http" else None
        if services is None:  # not HTTP, or the node is not started
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD" and self._rule(scope) is None:
            # HEAD where GET is public (pages, /healthz, the log's tiles): the GET's answer, whose body
            # the server drops (it keeps the request's own scope, which says HEAD). A credentialed GET
            # (a download is a recorded read) is not repeated for a HEAD: 405, its Allow says GET.
            got = self._rule({**scope, "method": "GET"})
            if got is not None and not got.bearer:
                scope = {**scope, "method": "GET"}
        settings = services.settings
        headers = _headers(scope)
        try:
            rule = self._rule(scope)
            if rule is not None and rule.bearer:
                scope[CALLER] = await authorize(services, headers.get("authorization"), list(rule.roles))
            has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
            if (
                has_body
                and scope.get(BODY_IN)
                and _declared(headers)
                <= (settings.max_json_bytes if rule is not None and not rule.streams_body else _UNBOUNDED)
            ):
                pass  # all of it is in, within its bound: nothing to wait for, nothing more can come
            elif has_body and rule is not None and not rule.streams_body:
                receive = await _read_whole(receive, headers, settings.max_json_bytes, settings.body_timeout_seconds)
            elif has_body:
                receive = _paced(receive, settings.body_timeout_seconds)
        except _Gone:
            return
        except (SifaError, PersistenceError, MapperDeserialisationError) as exc:
            await self.refuse(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)  # a route streaming its body meets BodyTimeoutError there


BODY_IN = "sifa.body_in"  # scope key: the server (api/server.py) has received all of the request's body
_UNBOUNDED = 1 << 62


def _declared(headers: dict[str, str]) -> int:
    """The body's Content-Length; unbounded when it has none (chunked) or it is not digits."""
    declared = headers.get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else _UNBOUNDED


class _Gone(Exception):
    """The client disconnected while its body was read: nobody to answer."""


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; the first of repeated ones."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


async def _next_chunk(receive: Receive, timeout: float) -> Message:
    try:
        async with asyncio.timeout(timeout):
            return await receive()
    except TimeoutError:
        raise BodyTimeoutError(f"the request's body stopped for {timeout:g} s") from None


async def _read_whole(receive: Receive, headers: dict[str, str], limit: int, timeout: float) -> Receive:
    """Read a body of at most ``limit`` bytes; a ``receive`` that gives it to the app. Raises
    PayloadTooLargeError (by Content-Length, before reading; or as it streams), BodyTimeoutError."""
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"this request's body may have at most {limit} bytes")
    chunks, total = [], 0
    while True:
        message = await _next_chunk(receive, timeout)
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"this request's body may have at most {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    whole: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def replay() -> Message:
        nonlocal whole
        if whole is None:
            return await receive()  # after the body: the client's disconnect, when it comes
        message, whole = whole, None
        return message

    return replay


def _paced(receive: Receive, timeout: float) -> Receive:
    """``receive``, with at most ``timeout`` seconds to wait for each piece of the body."""
    done = False

    async def paced() -> Message:
        nonlocal done
        if done:
            return await receive()  # waiting for a disconnect during a streamed answer takes its time
        message = await _next_chunk(receive, timeout)
        done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return paced


def install(app: FastAPI, refuse: Refusal) -> None:
    app.add_middleware(Edge, refuse=refuse)
