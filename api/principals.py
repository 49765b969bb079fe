"""Who may call the node: principals with bearer credentials, event-sourced.

A principal (clerk, judge, archivist, lawyer, party, administrator) is an
aggregate in its own eventsourcing application (its own tables, never sealed
into the court's public log). Its id follows from the SHA-256 of its bearer
token, so authenticating is one repository read; only the hash is stored.

The administrators not revoked are also one aggregate (``Administrators``), saved
in the same transaction as every issue or revocation of an administrator: its
version is a compare-and-set, so two administrators revoking each other at once
cannot leave the court without one. Every change made by a principal (issue, admit, revoke)
also records an ``Acted`` event on the acting principal, in the same transaction: a revocation
of that principal saved meanwhile (by any node on the same store) makes the save conflict, and
the retry, reading the actor afresh (never the remembered callers), refuses it (``AuthError``).
The last one is never revoked
(``LastAdministratorError``); a lost credential is replaced by ``sifa admin``,
which needs the data dir (docs/administration.md).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, Notification

from dossier import fields
from ledger.errors import SifaError

ROLES = ("administrator", "clerk", "judge", "archivist", "lawyer", "party")
STAFF = ("clerk", "judge", "archivist")
READERS = (*STAFF, "lawyer", "party")  # who may read a dossier open to them
NAMESPACE = uuid.UUID("0f6c2a7e-2b9d-4c61-8d5e-7a1f3b9e2c44")
ADMINISTRATORS = uuid.uuid5(NAMESPACE, "administrators")
ATTEMPTS = 8  # saves retried when another writer changed the administrators meanwhile
# An authenticated caller is remembered this long, so a busy client is not one store read per
# request. Admissions and revocations made through this node take effect at once; one made by
# another process writing the same principals store takes effect within this many seconds.
REMEMBER_SECONDS = 2.0


class AuthError(SifaError):
    code = "unauthenticated"


class ForbiddenError(SifaError):
    code = "forbidden"


class LastAdministratorError(SifaError):
    """Revoking this administrator would leave the court with none."""

    code = "last_administrator"


class PrincipalNotFoundError(SifaError):
    code = "principal_not_found"


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
        self.name, self.role, self.court, self.issued_by = name, role, court, issued_by
        self.dossiers: list[str] = []
        self.revoked = False

    @event("Admitted")
    def admit(self, dossier: str, by: str) -> None:
        if dossier not in self.dossiers:
            self.dossiers.append(dossier)

    @event("Revoked")
    def revoke(self, by: str) -> None:
        self.revoked = True

    @event("Acted")
    def acted(self, what: str) -> None:
        """This principal changed a principal: its version is the compare-and-set a revocation races."""


class Administrators(Aggregate):
    """The ids of the administrators not revoked: one aggregate, one version to compare and set."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return ADMINISTRATORS

    @event("Counted")
    def __init__(self, ids: list[str]) -> None:
        self.ids = list(ids)

    @event("Added")
    def add(self, principal: str) -> None:
        if principal not in self.ids:
            self.ids.append(principal)

    @event("Removed")
    def remove(self, principal: str) -> None:
        self.ids.remove(principal)


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

    def issue(self, *, name: str, role: str, court: str, issued_by: str, actor: str | None = None) -> tuple[str, str]:
        """A new principal; returns (its id, its bearer token — shown once, never stored). ``actor``: the id
        of the principal issuing it (None: the node's operator, `sifa init`/`sifa admin`); a revoked actor
        raises AuthError and nothing is recorded."""
        if role not in ROLES:
            raise ForbiddenError(f"role is one of {', '.join(ROLES)}")
        name = fields.text(name, "principal name")  # NFC, bounded, no control or bidi characters
        token = "sifa_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        ident = ""

        def issued(admins: Administrators | None) -> list[Aggregate]:
            nonlocal ident
            p = Principal(token_sha256=hashlib.sha256(token.encode()).hexdigest(), name=name, role=role,
                          court=court, issued_by=issued_by)  # fmt: skip
            ident = str(p.id)
            made: list[Aggregate] = [p, *self._acting(actor, f"issued {ident}")]
            if admins is None:
                return made
            admins.add(ident)
            return [*made, admins]

        self._save(issued, administrators=role == "administrator")
        return ident, token

    def _save(self, change: Callable[[Administrators | None], list[Aggregate]], *, administrators: bool) -> None:
        """Save what ``change`` makes (given the administrators, if they are involved) in one transaction;
        made again from fresh reads when another writer changed the administrators meanwhile."""
        for attempt in range(ATTEMPTS):
            try:
                self.save(*change(self._administrators() if administrators else None))
                return
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise

    def _acting(self, actor: str | None, what: str, *, target: Principal | None = None) -> list[Aggregate]:
        """The acting principal, read afresh from the store, with an ``Acted`` event to save beside the
        change: a revocation saved meanwhile makes that save conflict. Raises AuthError if it is revoked."""
        if actor is None:
            return []
        if target is not None and str(target.id) == actor:
            return []  # acting on itself: the change is an event on the same aggregate
        try:
            p = self._get(UUID(actor))
        except ValueError:
            raise AuthError("unknown or revoked credential") from None
        if p.revoked:
            self._forget(p.id)
            raise AuthError("unknown or revoked credential")
        p.acted(what=what)
        return [p]

    def _administrators(self) -> Administrators:
        """The administrators not revoked; counted from every principal the first time (a store of an
        older sifa), then kept as one aggregate."""
        try:
            admins: Administrators = self.repository.get(ADMINISTRATORS)
        except AggregateNotFoundError:
            issued = {n.originator_id for n in self._notifications() if n.topic.endswith("Principal.Issued")}
            found: list[Principal] = [self.repository.get(UUID(str(i))) for i in issued]
            return Administrators(ids=sorted(str(p.id) for p in found if p.role == "administrator" and not p.revoked))
        return admins

    def _notifications(self) -> Iterator[Notification]:
        after: int | None = None
        while notes := self.recorder.select_notifications(start=after, limit=500, inclusive_of_start=after is None):
            yield from notes
            after = notes[-1].id

    def _get(self, ident: UUID) -> Principal:
        try:
            p: object = self.repository.get(ident)
        except AggregateNotFoundError:
            raise AuthError("unknown or revoked credential") from None
        if not isinstance(p, Principal):  # the administrators' own aggregate is no principal
            raise AuthError("unknown or revoked credential")
        return p

    def name_of(self, actor: str) -> str | None:
        """The name of the principal an ``actor`` (``role:id``) stands for; None if unknown."""
        try:
            return self._get(UUID(actor.partition(":")[2])).name
        except (AuthError, ValueError):
            return None

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

    def admit(self, principal: str, dossier: str, by: str, actor: str | None = None) -> None:
        """Admit a lawyer or party to a dossier; ``actor`` as for ``issue``."""
        try:
            ident = UUID(principal)
        except ValueError:
            raise ForbiddenError(f"no principal {principal}") from None

        def admitted(_: Administrators | None) -> list[Aggregate]:
            acting = self._acting(actor, f"admitted {ident} to {dossier}")  # first: a revoked actor learns no more
            try:
                p = self._get(ident)
            except AuthError:
                raise ForbiddenError(f"no principal {principal}") from None
            if p.role not in ("lawyer", "party"):
                raise ForbiddenError("only lawyers and parties are admitted to single dossiers")
            p.admit(dossier=dossier, by=by)
            return [p, *acting]

        self._save(admitted, administrators=False)
        self._forget(ident)

    def revoke(self, principal: str, by: str, actor: str | None = None) -> None:
        """Revoke a credential. Raises ForbiddenError (no such principal), LastAdministratorError,
        AuthError (``actor``, as for ``issue``, is revoked)."""
        self._acting(actor, "")  # a revoked actor is refused before it learns whether the principal exists
        try:
            ident = UUID(principal)
            role = self._get(ident).role
        except (ValueError, AuthError):
            raise ForbiddenError(f"no principal {principal}") from None

        def revoked(admins: Administrators | None) -> list[Aggregate]:
            p = self._get(ident)
            acting = self._acting(actor, f"revoked {ident}", target=p)
            p.revoke(by=by)
            if admins is None or str(ident) not in admins.ids:
                return [p, *acting]
            if len(admins.ids) == 1:
                raise LastAdministratorError("this is the court's last administrator: issue another one first "
                                             "(a lost credential is replaced by `sifa admin` on the node)")  # fmt: skip
            admins.remove(str(ident))
            return [p, *acting, admins]

        self._save(revoked, administrators=role == "administrator")
        self._forget(ident)

    def shown(self, principal: str) -> dict[str, Any]:
        """One principal as an administrator sees it (never its credential). Raises PrincipalNotFoundError."""
        try:
            p = self._get(UUID(principal))
        except (ValueError, AuthError):
            raise PrincipalNotFoundError(f"no principal {principal}") from None
        return {"id": str(p.id), "name": p.name, "role": p.role, "court": p.court, "issued_by": p.issued_by,
                "revoked": p.revoked, "dossiers": list(p.dossiers)}  # fmt: skip

    def listed(self) -> list[dict[str, Any]]:
        """Every principal issued, oldest first, as ``shown``."""
        issued = [n.originator_id for n in self._notifications() if n.topic.endswith("Principal.Issued")]
        return [self.shown(str(i)) for i in issued]

    def administrators(self) -> list[str]:
        """The ids of the administrators not revoked."""
        return list(self._administrators().ids)
