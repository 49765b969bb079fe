"""Case numbers (案号) and the court registry a node knows.

A case number follows 《最高人民法院关于人民法院案件案号的若干规定》: （收案年度）, the court's 代字
(``京0105``, ``京02``, ``京``, ``最高法``), the case-type 代字 (``民初``, ``刑终``, ``执``, …), the serial
number and 号: ``（2026）京0105民初123号``. ``normal_case_number`` gives the one form a dossier is
opened under: full-width brackets, no spaces, ASCII digits, no leading zeros in the serial, so a
clerk typing ``(2026) 京0105民初0123号`` finds the same case. The court 代字 is kept in the court
registry (``designator`` in courts.json) and checked against the node's own court.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dossier.errors import InvalidDossierInputError, UnknownCourtError, WrongCourtError
from dossier.fields import LIMITS, text
from ledger import boundedjson

# （2026）京0105民初123号: year, court 代字 (province abbreviation and digits, or 最高法), case-type 代字, serial.
CASE_NUMBER = re.compile(
    r"[（(]([0-9]{4})[）)](最高法|[\u4e00-\u9fff](?:[0-9]{2,6})?)([\u4e00-\u9fff]{1,6}?)([0-9]{1,7})号"
)
DESIGNATOR = re.compile(r"最高法|[\u4e00-\u9fff](?:[0-9]{2,6})?")
CASE_TYPES = ("民事", "刑事", "行政", "执行", "国家赔偿", "非诉保全")
LEVELS = ("基层", "中级", "高级", "最高")
ORIGIN_PREFIX = "sifa.court/"  # a court log's origin: this, then the court code


def origin_for(court: str) -> str:
    """The stable log origin of a court, named in every checkpoint."""
    return ORIGIN_PREFIX + court


# Brackets a clerk may type for the year's, and every kind of space (U+3000 the ideographic one).
_BRACKETS = str.maketrans({"(": "（", ")": "）", "﹙": "（", "﹚": "）"})
_SPACES = re.compile(r"\s+")
_SERIAL = re.compile(r"([0-9]+)号$")


def case_number(text: str) -> str:
    """The NFC case number if it is of the 案号 form (as recorded: not normalised). Raises InvalidDossierInputError."""
    value = unicodedata.normalize("NFC", text.strip()) if isinstance(text, str) else ""
    if not CASE_NUMBER.fullmatch(value):
        raise InvalidDossierInputError(f"{text!r} is not a case number like （2026）京0105民初123号")
    return value


def normal_case_number(text: str) -> str:
    """The one form of a case number: full-width brackets, no spaces, ASCII digits, the serial
    without leading zeros. Raises InvalidDossierInputError if it is not of the 案号 form."""
    if not isinstance(text, str):
        raise InvalidDossierInputError("a case number is text")
    value = _SPACES.sub("", unicodedata.normalize("NFC", text))
    # Full-width digits (０-９) to ASCII; NFKC on the whole would also fold the brackets the other way.
    value = "".join(unicodedata.normalize("NFKC", c) if "０" <= c <= "９" else c for c in value)
    value = value.translate(_BRACKETS)
    value = _SERIAL.sub(lambda m: f"{int(m.group(1))}号", value)
    found = CASE_NUMBER.fullmatch(value)
    if found is None or found.group(4) == "0":
        raise InvalidDossierInputError(f"{text[:60]!r} is not a case number like （2026）京0105民初123号")
    return value


def designator_of(number: str) -> str:
    """The court 代字 of a case number already of the 案号 form."""
    found = CASE_NUMBER.fullmatch(number)
    if found is None:
        raise InvalidDossierInputError(f"{number[:60]!r} is not a case number like （2026）京0105民初123号")
    return found.group(2)


@dataclass(frozen=True)
class Court:
    code: str
    name: str
    level: str
    parent: str | None = None
    designator: str | None = None  # the court's 代字 in case numbers, e.g. 京0105


class CourtRegistry:
    """The courts a node knows (its own, its superiors, its peers), by code."""

    def __init__(self, courts: list[Court]) -> None:
        designators: dict[str, str] = {}
        for c in courts:
            if not isinstance(c.code, str) or not c.code:
                raise InvalidDossierInputError(f"court code {c.code!r} is not text")
            text(c.name, f"court {c.code}: name", limit=LIMITS["court name"])
            if c.level not in LEVELS:
                raise InvalidDossierInputError(f"court {c.code}: level {c.level!r} is not one of {LEVELS}")
            if c.parent is not None and (not isinstance(c.parent, str) or c.parent == c.code):
                raise InvalidDossierInputError(f"court {c.code}: its parent {c.parent!r} is not another court's code")
            if c.designator is not None:
                if not isinstance(c.designator, str) or not DESIGNATOR.fullmatch(c.designator):
                    raise InvalidDossierInputError(f"court {c.code}: 代字 {c.designator!r} is not like 京0105")
                if c.designator in designators:
                    raise InvalidDossierInputError(f"court {c.code}: 代字 {c.designator} is court "
                                                   f"{designators[c.designator]}'s already")  # fmt: skip
                designators[c.designator] = c.code
        self._courts = {c.code: c for c in courts}

    @classmethod
    def from_file(cls, path: Path) -> CourtRegistry:
        """The registry in ``path`` (courts.json). Raises InvalidDossierInputError for a file that is not
        one (not JSON, not ``{"courts": [...]}``, an unknown or missing key), OSError if unreadable."""
        try:
            raw = boundedjson.load_path(path)
            return cls([Court(**entry) for entry in raw["courts"]])
        except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
            if isinstance(exc, InvalidDossierInputError):
                raise
            raise InvalidDossierInputError(f"{path} is not a court registry ({{\"courts\": [...]}}): "
                                           f"{type(exc).__name__} {str(exc)[:100]}") from None  # fmt: skip

    def get(self, code: str) -> Court:
        try:
            return self._courts[code]
        except (KeyError, TypeError):
            raise UnknownCourtError(f"no court with code {code!r} is known to this node") from None

    def __contains__(self, code: object) -> bool:
        return code in self._courts

    def __iter__(self) -> Iterator[Court]:
        return iter(self._courts.values())

    def check_own(self, number: str, court: str) -> None:
        """Refuse a case number whose court 代字 is not ``court``'s (when the registry knows its 代字).
        Raises WrongCourtError."""
        mine = self._courts[court].designator if court in self._courts else None
        found = designator_of(number)
        if mine is not None and found != mine:
            raise WrongCourtError(f"case {number} is a case of court {found}, not of this court ({mine})",
                                  designator=found, court_designator=mine)  # fmt: skip
