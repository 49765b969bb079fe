"""Auto-cataloguing (自动编目): where an uploaded document goes in the 卷内目录.

The rule table follows the usual order of litigation materials in a first-
instance dossier: a document is placed by its declared type, else by words in
its file name, else by words in its PDF text. Page counts come from the PDF.
A clerk can always override with a manual ``Catalogued`` event.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from storage.blobstore import Source, chunks

log = logging.getLogger(__name__)
SPOOL = 8 << 20  # bytes of a PDF held in memory before its copy spills to a temporary file


@dataclass(frozen=True)
class Rule:
    category: str
    order: int
    volume: str
    words: tuple[str, ...]


RULES: tuple[Rule, ...] = (
    Rule("起诉状", 10, "正卷", ("起诉状", "起诉书", "民事起诉", "行政起诉")),
    Rule("受理通知书", 20, "正卷", ("受理通知书", "受理案件通知书")),
    Rule("应诉通知书", 30, "正卷", ("应诉通知书", "举证通知书")),
    Rule("答辩状", 40, "正卷", ("答辩状", "答辩意见")),
    Rule("证据材料", 50, "正卷", ("证据", "证据目录", "证据材料", "鉴定意见")),
    Rule("送达回证", 60, "正卷", ("送达回证", "送达地址确认书", "电子送达")),
    Rule("庭审笔录", 70, "正卷", ("庭审笔录", "开庭笔录", "询问笔录", "调查笔录")),
    Rule("判决书", 80, "正卷", ("判决书", "裁定书", "调解书", "决定书")),
    Rule("上诉状", 90, "正卷", ("上诉状",)),
    Rule("审理报告", 110, "副卷", ("审理报告", "合议庭评议笔录", "审判委员会讨论记录", "评议笔录")),
)
OTHER = Rule("其他材料", 100, "正卷", ())


@dataclass(frozen=True)
class Placement:
    category: str
    order: int
    volume: str
    reason: str  # "declared", "file name", "pdf text", "default"


def place(doc_type: str | None, name: str, text: str = "", *, court: bool = True) -> Placement:
    """Where a document goes: by declared type, then file name, then PDF text.

    ``court=False`` (a lawyer's or party's upload): only into the 正卷, whatever it declares.
    """
    rules = RULES if court else tuple(r for r in RULES if r.volume == "正卷")
    for source, haystack in (("declared", doc_type or ""), ("file name", name), ("pdf text", text[:4000])):
        for rule in rules:
            if any(w in haystack for w in rule.words):
                return Placement(rule.category, rule.order, rule.volume, source)
    return Placement(OTHER.category, OTHER.order, OTHER.volume, "default")


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    text: str
    encrypted: bool


def pdf_info(chunks: Iterable[bytes]) -> PdfInfo | None:
    """Page count and first pages' text of a PDF; None if the bytes do not parse as one."""
    with PdfCopy() as copy:
        for _ in copy.passing(chunks):
            pass
        return copy.info()


class PdfCopy:
    """Keeps a copy of bytes on their way elsewhere (spooled to disk past SPOOL), to read them as a
    PDF afterwards: an upload is hashed, stored and page-counted from one pass over its bytes."""

    def __init__(self) -> None:
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (closed by __exit__)

    def __enter__(self) -> PdfCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._spool.close()

    def passing(self, source: Source) -> Iterator[bytes]:
        """The source's chunks, each copied as it passes."""
        for chunk in chunks(source):
            self._spool.write(chunk)
            yield chunk

    def info(self) -> PdfInfo | None:
        """Page count and first pages' text of the bytes that passed; None if they are no PDF."""
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        self._spool.seek(0)
        try:
            reader = PdfReader(self._spool)
            encrypted = reader.is_encrypted
            pages = len(reader.pages)
            text = "" if encrypted else "".join((p.extract_text() or "") for p in reader.pages[:2])
        except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
            log.info("not a readable PDF: %s", exc)
            return None
        return PdfInfo(pages, text, encrypted)
