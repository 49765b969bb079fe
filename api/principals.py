"""Who may call the node: principals with bearer credentials, event-sourced.

A principal (clerk, judge, archivist, lawyer, party, administrator) is an
aggregate in its own eventsourcing application (its own tables, never sealed
into the court's public log). Its id follows from the SHA-256 of its bearer
token, so authenticating is one repository read; only the hash is stored.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from dossier import fields
from ledger.errors import SifaError

ROLES = ("administrator", "clerk", "judge", "archivist", "lawyer", "party")
STAFF = ("clerk", "judge", "archivist")
NAMESPACE = uuid.UUID("0f6c2a7e-2b9d-4c61-8d5e-7a1f3b9e2c44")
# An authenticated caller is remembered this long, so a busy client is not one store read per
# request. Admissions and revocations made through this node take effect at once; one made by
# another process writing the same principals store takes effect within this many seconds.
REMEMBER_SECONDS = 2.0


class AuthError(SifaError):
    code = "unauthenticated"


class ForbiddenError(SifaError):
    code = "forbidden"


class NotAdmittedError(ForbiddenError):
    """The role may do this, but not on this dossier (a lawyer or party not admitted to it)."""

    code = "dossier_not_admitted"


def token_id(token: str) -> UUID:
    return uuid.uuid5(NAMESPACE, hashlib.sha256(token.encode()).hexdigest())


class Principal(Aggregate):
    @staticmethod
    def create_id(token_sha256: str, **_: Any) -> UUID:
        return uuid.uuid5(NAMESPACE, token_sha256)

    @event("Issued")
    def __init__(self, token_sha256: str, name: str, role: str, court: str, issued_by: str) -> None:
        self.name, self.role, self.court = name, role, court
        self.dossiers: list[str] = []
        self.revoked = False

    @event("Admitted")
    def admit(self, dossier: str, by: str) -> None:
        if dossier not in self.dossiers:
            self.dossiers.append(dossier)

    @event("Revoked")
    def revoke(self, by: str) -> None:
        self.revoked = True


@dataclass(frozen=True)
class Caller:
    """An authenticated principal, as handlers see it."""

    id: str
    name: str
    role: str
    court: str
    dossiers: tuple[str, ...]

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.id}"

    def may_read(self, dossier: str, court: str) -> bool:
        if self.role in ("lawyer", "party"):
            return dossier in self.dossiers
        return self.court == court


class Principals(Application[UUID]):
    """Issue, admit, revoke and authenticate principals."""

    name = "sifa_principals"

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(dict(env))
        self._recent: dict[str, tuple[float, Caller]] = {}  # by token
        self._recent_lock = threading.Lock()

    def _forget(self, ident: UUID) -> None:
        with self._recent_lock:
            for token in [t for t, (_, c) in self._recent.items() if c.id == str(ident)]:
                del self._recent[token]

    def issue(self, *, name: str, role: str, court: str, issued_by: str) -> tuple[str, str]:
        """A new principal; returns (its id, its bearer token — shown once, never stored)."""
        if role not in ROLES:
            raise ForbiddenError(f"role is one of {', '.join(ROLES)}")
        name = fields.text(name, "principal name")  # NFC, bounded, no control or bidi characters
        token = "sifa_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        p = Principal(token_sha256=hashlib.sha256(token.encode()).hexdigest(), name=name, role=role, court=court,
                      issued_by=issued_by)  # fmt: skip
        self.save(p)
        return str(p.id), token

    def _get(self, ident: UUID) -> Principal:
        try:
            p: Principal = self.repository.get(ident)
        except AggregateNotFoundError:
            raise AuthError("unknown or revoked credential") from None
        return p

    def remembered(self, token: str) -> Caller | None:
        """The caller, if authenticated within the last few seconds (no store read)."""
        if not token.startswith("sifa_") or len(token) > 100:
            raise AuthError("malformed credential")
        with self._recent_lock:
            seen = self._recent.get(token)
        return seen[1] if seen is not None and time.monotonic() - seen[0] < REMEMBER_SECONDS else None

    def authenticate(self, token: str) -> Caller:
        """The caller a bearer token belongs to. Raises AuthError."""
        remembered = self.remembered(token)
        if remembered is not None:
            return remembered
        ident, now = token_id(token), time.monotonic()
        p = self._get(ident)
        if p.revoked:
            raise AuthError("unknown or revoked credential")
        caller = Caller(str(p.id), p.name, p.role, p.court, tuple(p.dossiers))
        with self._recent_lock:
            if len(self._recent) > 10_000:
                self._recent.clear()
            self._recent[token] = (now, caller)
        return caller

    def admit(self, principal: str, dossier: str, by: str) -> None:
        try:
            p = self._get(UUID(principal))
        except (ValueError, AuthError):
            raise ForbiddenError(f"no principal {principal}") from None
        if p.role not in ("lawyer", "party"):
            raise ForbiddenError("only lawyers and parties are admitted to single dossiers")
        p.admit(dossier=dossier, by=by)
        self.save(p)
        self._forget(p.id)

    def revoke(self, principal: str, by: str) -> None:
        try:
            p = self._get(UUID(principal))
        except (ValueError, AuthError):
            raise ForbiddenError(f"no principal {principal}") from None
        p.revoke(by=by)
        self.save(p)
        self._forget(p.id)
