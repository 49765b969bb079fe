"""Every error code the code can answer with is documented in docs/errors.md.

Codes come from two places: the ``code`` of every ``SifaError`` subclass (found by importing every
module of the project's packages), and the literal codes written where an answer or a verdict is
built by hand (``error_body("…")``, ``"code": "…"``, ``code="…"``). A code missing from the table fails here, so a
new refusal cannot ship undocumented.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from ledger.errors import SifaError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "dossier", "evidence", "storage", "verifier", "api")
LITERAL = re.compile(r'(?:error_body\(|"code": |\bcode=)(?:None if \w+ else )?"([a-z][a-z0-9_]*)"')


def _import_all() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(info.name)


def _subclasses(cls: type[SifaError]) -> set[type[SifaError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def codes_in_code() -> dict[str, str]:
    """code -> where it was found."""
    _import_all()
    out = {SifaError.code: "ledger.errors.SifaError"}
    for cls in _subclasses(SifaError):
        if cls.__module__.split(".")[0] in PACKAGES:
            out.setdefault(cls.code, f"{cls.__module__}.{cls.__qualname__}")
    for name in PACKAGES:
        for path in sorted((ROOT / name).rglob("*.py")):
            for code in LITERAL.findall(path.read_text(encoding="utf-8")):
                out.setdefault(code, str(path.relative_to(ROOT)))
    return out


def documented() -> set[str]:
    return set(re.findall(r"`([a-z][a-z0-9_]*)`", (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")))


def test_every_error_code_is_documented() -> None:
    missing = {code: where for code, where in codes_in_code().items() if code not in documented()}
    assert not missing, f"codes missing from docs/errors.md: {missing}"


def test_the_scan_finds_codes() -> None:
    """The scan itself works: it sees codes of every kind of source (a class, a hand-built answer)."""
    found = codes_in_code()
    assert {"dossier_not_found", "unauthenticated", "invalid_request", "file_not_in_receipt"} <= set(found)
