"""The fields of a command, as the library takes them: bounded, NFC, clean.

Every text a command records is NFC-normalised and bounded in code points (``LIMITS``);
control characters (C0 and C1, NUL and DEL included) are refused — multi-line free text
(a description, a reason) may hold line feeds and tabs, nothing else — and so are the bidi
embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make a name read
otherwise than it is, and lone surrogates, which no UTF-8 leaf can hold. Times arrive as
ISO 8601 text with a UTC offset and are recorded as UTC (``utc``). Counts are integers (never
booleans) in a range. Each refusal raises InvalidDossierInputError naming the field.

The API mirrors these bounds in its request models (so a client learns them from the
schema); the library checks them again, whoever calls it. Together with the bounds on list
lengths (``MAX_PARTIES``, ``MAX_CONTRACT_PARTIES``) they keep every event's leaf well under
the log's 65,535 bytes; ``dossier.envelope.check_fits`` refuses anything that would not fit.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from dossier.errors import InvalidDossierInputError

# Longest text each field takes, in code points after NFC (docs/api.md lists them).
LIMITS: dict[str, int] = {
    "case number": 40,
    "party role": 50,
    "party name": 200,
    "party id_number": 64,
    "party phone": 64,
    "party address": 500,
    "file name": 255,
    "media type": 255,
    "doc type": 50,
    "category": 50,
    "title": 500,
    "evidence name": 255,
    "description": 2000,
    "channel": 100,
    "reason": 2000,
    "reader": 200,
    "court": 20,
    "court name": 100,
    "actor": 200,
    "role": 20,
    "document id": 64,
    "principal name": 200,
    "tracking number": 40,  # 送达 by post (dossier/service.py)
    "agent name": 200,
    "account": 64,  # 执行: a bank or payment account, a commitment in the log (dossier/execution.py)
}
MAX_PARTIES = 100  # a dossier's parties when it is opened: every field full, its leaf still fits
MAX_CONTRACT_PARTIES = 50
MAX_ORDER = 100_000
MAX_PAGES = 1_000_000
MAX_SIZE = 2**53 - 1  # bytes of a file: the largest integer RFC 8785 (IEEE 754) holds exactly
MULTI_LINE = "\n\t"
# Bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI).
BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
# C0, DEL, C1, bidi controls and lone surrogates; a multi-line text takes \n and \t back.
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_BAD_MULTI = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_HEX = re.compile("[0-9a-f]+")
_ZERO = timedelta(0)
# RFC 3339 date-time (ISO 8601 extended): a date, a time to the second or finer, and its offset.
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")


def text(value: Any, what: str, *, required: bool = True, multiline: bool = False, limit: int | None = None) -> str:
    """``value`` as NFC text of at most ``LIMITS[what]`` code points, clean. Raises InvalidDossierInputError."""
    most = LIMITS[what] if limit is None else limit
    if not isinstance(value, str):
        raise InvalidDossierInputError(f"{what} must be text")
    if len(value) > 4 * most:  # NFC never shrinks text 4-fold: refuse before normalising a huge one
        raise InvalidDossierInputError(f"{what} has more than {most} characters")
    out = unicodedata.normalize("NFC", value)
    if len(out) > most:
        raise InvalidDossierInputError(f"{what} has more than {most} characters")
    if required and not out.strip():
        raise InvalidDossierInputError(f"{what} must not be empty")
    bad = (_BAD_MULTI if multiline else _BAD).search(out)
    if bad is not None:
        c = bad.group()
        kind = "a bidi control" if c in BIDI else "a surrogate" if 0xD800 <= ord(c) <= 0xDFFF else "a control character"
        lines = " (only line feeds and tabs are allowed)" if multiline else ""
        raise InvalidDossierInputError(f"{what} holds {kind}, U+{ord(c):04X}{lines}")
    return out


def optional_text(value: Any, what: str, **kw: Any) -> str | None:
    """``text`` for a field that may be absent (None)."""
    return None if value is None else text(value, what, **kw)


def utc(ts: datetime) -> str:
    """``2026-11-22T08:30:00.123456Z``: always microseconds, always UTC. Raises OverflowError
    for a time whose offset takes it outside the years 1 to 9999."""
    if ts.tzinfo is not UTC and ts.utcoffset() != _ZERO:
        ts = ts.astimezone(UTC)
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T"
            f"{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}.{ts.microsecond:06d}Z")  # fmt: skip


def moment(value: Any, what: str) -> str:
    """An ISO 8601 time with a UTC offset (``…Z`` or ``…+08:00``), as recorded: ``utc`` form."""
    if not isinstance(value, str) or not _MOMENT.fullmatch(value):
        raise InvalidDossierInputError(
            f"{what} must be an ISO 8601 time with its UTC offset: 2026-11-22T08:00:00+08:00"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidDossierInputError(f"{what} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidDossierInputError(f"{what} has no UTC offset (add Z or +08:00)")
    try:
        return utc(parsed)
    except OverflowError:
        raise InvalidDossierInputError(f"{what} must lie within the years 1 to 9999 in UTC") from None


def optional_moment(value: Any, what: str) -> str | None:
    return None if value is None else moment(value, what)


def count(value: Any, what: str, *, most: int, least: int = 0) -> int:
    """An integer (not a boolean) from ``least`` to ``most``."""
    if type(value) is not int or not least <= value <= most:
        raise InvalidDossierInputError(f"{what} must be a whole number from {least} to {most}")
    return value


def optional_count(value: Any, what: str, *, most: int, least: int = 0) -> int | None:
    return None if value is None else count(value, what, most=most, least=least)


def flag(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise InvalidDossierInputError(f"{what} must be true or false")
    return value


def choice(value: Any, what: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidDossierInputError(f"{what} is one of {', '.join(allowed)}")
    return value


def is_hex(value: str) -> bool:
    """Lowercase hex digits only (a hash, a salt)."""
    return bool(_HEX.fullmatch(value))


def who(actor: Any, role: Any) -> dict[str, str]:
    """The acting principal and role, as every event records them."""
    return {"actor": text(actor, "actor"), "role": text(role, "role")}
