"""The 卷内目录 (list of the documents in a volume), with the columns of a court's 卷内文件目录.

Columns: 序号 (order number), 文号 (reference number), 责任者 (author), 题名 (title), 日期 (date),
起止页号 (first–last page), 备注 (remarks). Rows run 正卷 first, then 副卷; each volume is numbered
on its own.

- 序号: 1, 2, 3, … in each volume, one per document, never repeated (the catalogue's ``order`` is a
  rank by category, shared by documents of one category; it decides the order, not the number).
- 文号: the document's declared reference number when its upload declared one (``doc_type`` holding
  a 号, e.g. （2026）京0105民初123号); empty otherwise — it is never guessed.
- 责任者: the court's name for what the court filed; 当事人 or 律师 for what a party or lawyer sent.
- 日期: the day it was recorded, in Beijing time (UTC+8), ``2026-11-22``.
- 起止页号: pages run on without gaps through the volume. **A document without a page count** (not a
  PDF, or catalogued without pages) **is counted as one page** — a photo, a recording or a disc is
  filed as one sheet in a paper volume — and its 备注 says so (页数未知，按1页计); the four-property
  check (dossier/inspection.py) lists such documents under 完整性 as a check, not as a failure.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta, timezone
from typing import Any

from dossier.domain import Dossier

BEIJING = timezone(timedelta(hours=8), "北京时间")
COLUMNS = {"no": "序号", "reference": "文号", "author": "责任者", "title": "题名", "date": "日期", "pages": "起止页号",
           "remarks": "备注"}  # fmt: skip
UNKNOWN_PAGES = 1  # pages a document without a page count takes in the volume
UNKNOWN_NOTE = "页数未知，按1页计"
AUTHORS = {"party": "当事人", "lawyer": "律师"}


def recorded_days(events: Iterable[Any]) -> dict[str, str]:
    """Document id -> the Beijing-time day its upload (or receipt from another court) was recorded."""
    out = {}
    for e in events:
        if type(e).__name__ in ("DocumentUploaded", "DocumentReceived"):
            out[e.document_id] = e.timestamp.astimezone(BEIJING).date().isoformat()
    return out


def directory(state: Dossier, court_name: str, hidden: Collection[str] = (),
              days: Mapping[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of the 卷内目录, ``hidden`` documents left out; ``days`` from ``recorded_days``."""
    rows = sorted(({"document_id": k, **v} for k, v in state.catalogue.items() if k not in hidden),
                  key=lambda e: (e["volume"] != "正卷", e["order"], e["title"]))  # fmt: skip
    page, number = {"正卷": 1, "副卷": 1}, {"正卷": 0, "副卷": 0}
    out = []
    for row in rows:
        volume = row["volume"]
        doc = state.documents.get(row["document_id"], {})
        pages = row.get("pages")
        count: int = pages if isinstance(pages, int) and pages > 0 else UNKNOWN_PAGES
        known = count == pages
        first, last = page[volume], page[volume] + count - 1
        page[volume] += count
        number[volume] += 1
        declared = doc.get("doc_type") or ""
        source = doc.get("source", "court")
        out.append({
            "no": number[volume], "volume": volume, "reference": declared if "号" in declared else "",
            "author": court_name if source == "court" else AUTHORS.get(source, source),
            "title": row["title"], "date": (days or {}).get(row["document_id"], ""),
            "pages": f"{first}–{last}" if last > first else str(first), "remarks": "" if known else UNKNOWN_NOTE,
            "first_page": first, "last_page": last, "page_count": pages if known else None,
            "category": row["category"], "document_id": row["document_id"], "sha256": doc.get("sha256"),
            "name": doc.get("name")})  # fmt: skip
    return out


def directory_html(state: Dossier, court_name: str, hidden: Collection[str] = (),
                   days: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """The 卷内目录 as a page a clerk can open and print; each title links to its file in the bag."""
    e = html.escape
    body = ""
    for volume in ("正卷", "副卷"):
        rows = [r for r in directory(state, court_name, hidden, days) if r["volume"] == volume]
        if not rows:
            continue
        cells = "".join(
            f"<tr><td>{r['no']}</td><td>{e(r['reference'])}</td><td>{e(r['author'])}</td>"
            f'<td><a href="../data/{e(r["sha256"] or "")}">{e(r["title"])}</a></td><td>{e(r["date"])}</td>'
            f"<td>{e(r['pages'])}</td><td>{e(r['remarks'])}</td></tr>\n"
            for r in rows
        )
        head = "".join(f"<th>{c}</th>" for c in COLUMNS.values())
        body += f"<h2>{volume}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>\n{cells}</tbody></table>\n"
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>卷内目录 {e(state.case_number)}</title>"
        "<style>body{font:16px/1.5 sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #888;padding:.3em .6em}</style></head><body>\n"
        f"<h1>卷内目录</h1>\n<p>{e(court_name)} · 案号 {e(state.case_number)} · {e(state.case_type)}</p>\n"
        f"{body}<p>{UNKNOWN_NOTE}：没有页数的文件（照片、录音录像等）在卷内按1页编号。</p>\n</body></html>\n"
    )
