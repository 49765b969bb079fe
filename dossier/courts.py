"""Case numbers (案号) and the court registry a node knows."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from dossier.errors import InvalidDossierInputError, UnknownCourtError
from ledger import boundedjson

# （2026）京0105民初123号: year, province abbreviation, court digits, case-type word(s), number.
CASE_NUMBER = re.compile(r"[（(]([0-9]{4})[）)]([\u4e00-\u9fff])([0-9]{2,6})([\u4e00-\u9fff]{1,6})([0-9]{1,7})号")
CASE_TYPES = ("民事", "刑事", "行政", "执行", "国家赔偿", "非诉保全")
LEVELS = ("基层", "中级", "高级", "最高")


def case_number(text: str) -> str:
    """The NFC case number if it is of the 案号 form. Raises InvalidDossierInputError."""
    value = unicodedata.normalize("NFC", text.strip()) if isinstance(text, str) else ""
    if not CASE_NUMBER.fullmatch(value):
        raise InvalidDossierInputError(f"{text!r} is not a case number like （2026）京0105民初123号")
    return value


@dataclass(frozen=True)
class Court:
    code: str
    name: str
    level: str
    parent: str | None = None


class CourtRegistry:
    """The courts a node knows (its own, its superiors, its peers), by code."""

    def __init__(self, courts: list[Court]) -> None:
        for c in courts:
            if c.level not in LEVELS:
                raise InvalidDossierInputError(f"court {c.code}: level {c.level!r} is not one of {LEVELS}")
        self._courts = {c.code: c for c in courts}

    @classmethod
    def from_file(cls, path: Path) -> CourtRegistry:
        raw = boundedjson.load_path(path)
        return cls([Court(**entry) for entry in raw["courts"]])

    def get(self, code: str) -> Court:
        try:
            return self._courts[code]
        except (KeyError, TypeError):
            raise UnknownCourtError(f"no court with code {code!r} is known to this node") from None

    def __contains__(self, code: object) -> bool:
        return code in self._courts
