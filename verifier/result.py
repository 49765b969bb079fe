"""What a verification found: each check (``Check``) and the result (``VerifyResult``).

A result is built one check at a time as the verifier goes; ``to_json`` is the ``--json`` object
(docs/verification.md): ``valid``, ``checks``, then the facts read from verified bytes, in the
order they verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.errors import MalformedError, SifaError, VerificationError


@dataclass(frozen=True, slots=True)
class Check:
    """One check and its outcome. ``code``: the error code when it failed; ``term``: the receipt term
    that did not match, when that is what failed."""

    check: str
    ok: bool
    detail: str
    code: str | None = None
    term: str | None = None
    path: str | None = None  # the disclosed field that did not open its commitment

    @classmethod
    def passed(cls, check: str, detail: str) -> Check:
        return cls(check, True, detail)

    @classmethod
    def failed(cls, check: str, exc: VerificationError | MalformedError | SifaError) -> Check:
        term, path = exc.detail.get("term"), exc.detail.get("path")
        return cls(check, False, exc.diagnostics(), exc.code, None if term is None else str(term),
                   None if path is None else str(path))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "ok": self.ok, "code": self.code, "detail": self.detail}
        if self.term is not None:
            out["term"] = self.term
        if self.path is not None:
            out["path"] = self.path
        return out


@dataclass
class VerifyResult:
    """Every check made, in order, and the facts read from verified bytes (present only once those
    bytes verified). ``valid`` only when every check the input calls for passed."""

    valid: bool = False
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    # claims the verifier could not judge here, each {"check", "detail"}: never shown as verified
    not_checked: list[dict[str, str]] = field(default_factory=list)

    def add(self, check: Check) -> bool:
        """Record a check; whether it passed."""
        self.checks.append(check)
        return check.ok

    @property
    def failed(self) -> Check | None:
        """The first check that failed."""
        return next((c for c in self.checks if not c.ok), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"valid": self.valid, "checks": [c.to_json() for c in self.checks]}
        if self.not_checked:
            out["not_checked"] = list(self.not_checked)
        return out | self.facts
