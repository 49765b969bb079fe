"""Render a 存证证书 (evidence certificate): one A4 page in Chinese, the receipt attached.

The lines come from ``evidence.certificate.lines`` (what the verifier recomputes); the font is a
CJK TrueType font of the machine, embedded and subset (fpdf2 keeps only the glyphs used); the QR
code (segno) is drawn as vector squares and opens the court's ``/verify`` page; the receipt is
embedded as ``receipt.json`` (a PDF embedded file), so that the certificate alone is the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import segno
from fpdf import FPDF

from evidence.certificate import (
    ATTACHMENT,
    COLON,
    DECLARED_HEADING,
    FORMAT,
    HOW_TO_HEADING,
    VERIFIED_HEADING,
    Lines,
    sign_pdf,
)  # fmt: skip
from ledger.errors import SifaError
from ledger.note import Signer

# Debian's packages (installed by .ci/system-packages): WenQuanYi Micro Hei, else Noto Sans CJK.
FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
)
FAMILY = "cjk"
HOW_TO_VERIFY = (
    f"{HOW_TO_HEADING}{COLON}\n"
    "1. 扫描左侧二维码，在法院核验页面选择原文件，页面在本机计算哈希并核验。\n"
    "2. 离线核验：sifa-verify --certificate 本证书.pdf [原文件] --trust 信任文件.json\n"
    "   本证书内附存证凭证（receipt.json），证书本身即可核验；\n"
    "   核验程序先核验法院对本证书的签名，再比对本页所印字段与凭证核验所得是否一致。"
)

# Without SIFA_PUBLIC_URL the node knows no address of its own it may print (the request's Host
# header is the client's to choose): no QR code, no link.
NO_URL_HOW_TO = (
    f"{HOW_TO_HEADING}{COLON}\n"
    "1. 本法院未配置公开核验地址，本证书不印二维码与链接。\n"
    "2. 离线核验：sifa-verify --certificate 本证书.pdf [原文件] --trust 信任文件.json\n"
    "   本证书内附存证凭证（receipt.json），证书本身即可核验；\n"
    "   核验程序先核验法院对本证书的签名，再比对本页所印字段与凭证核验所得是否一致。"
)


class CertificateFontMissingError(SifaError):
    """No CJK font on this machine: a certificate cannot be printed in Chinese (install
    fonts-wqy-microhei)."""

    code = "certificate_font_missing"


def find_font(candidates: Sequence[tuple[str, int]] = FONTS) -> tuple[Path, int]:
    """The first CJK font file present, and its index in a collection. Raises CertificateFontMissingError."""
    for path, index in candidates:
        if Path(path).is_file():
            return Path(path), index
    raise CertificateFontMissingError("no CJK font is installed on this node (apt-get install fonts-wqy-microhei)")


def render(lines: Lines, receipt_json: bytes, verify_url: str | None, *, court_name: str, signer: Signer,
           font: tuple[Path, int] | None = None, created: datetime | None = None) -> bytes:  # fmt: skip
    """The certificate's PDF bytes, signed by ``signer`` (the court's log key; evidence.certificate.sign_pdf).
    ``verify_url``: the court's /verify link for the QR code, or None (no public URL configured: the
    page prints neither QR code nor link). ``created``: the PDF's creation date (now by default)."""
    path, index = font if font is not None else find_font()
    created = created or datetime.now(UTC)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(created)
    pdf.set_title(f"存证证书 {lines.verified.get('证书编号', '')}")
    pdf.set_author(court_name)
    pdf.set_creator(FORMAT)
    pdf.set_lang("zh-CN")
    pdf.add_font(FAMILY, "", str(path), collection_font_number=index)
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font(FAMILY, size=22)
    pdf.cell(0, 14, "存证证书", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=10)
    pdf.cell(0, 6, court_name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _section(pdf, VERIFIED_HEADING, lines.verified)
    pdf.ln(2)
    if lines.declared:
        _section(pdf, DECLARED_HEADING, lines.declared)
        pdf.ln(2)
    top = pdf.get_y() + 2
    if verify_url is not None:
        _qr(pdf, verify_url, x=pdf.l_margin, y=top, size=40)
        pdf.set_xy(pdf.l_margin + 46, top)
    pdf.set_font(FAMILY, size=9)
    pdf.multi_cell(0, 5, HOW_TO_VERIFY if verify_url is not None else NO_URL_HOW_TO, new_x="LMARGIN", new_y="NEXT")
    if verify_url is not None:
        pdf.set_xy(pdf.l_margin, top + 42)
        pdf.set_font(FAMILY, size=7)
        pdf.multi_cell(0, 3.5, f"核验地址{COLON}{verify_url}", new_x="LMARGIN", new_y="NEXT")
    pdf.embed_file(bytes=receipt_json, basename=ATTACHMENT, mime_type="application/json", modification_date=created,
                   desc="存证凭证 sifa-receipt", associated_file_relationship="Source", compress=True)  # fmt: skip
    return sign_pdf(bytes(pdf.output()), signer)


def _section(pdf: FPDF, heading: str, rows: dict[str, str]) -> None:
    pdf.set_font(FAMILY, size=12)
    pdf.cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(160, 160, 160)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1)
    for label, value in rows.items():
        # One text line per field, "label：value", so that extracted text reads back as printed;
        # long values (hashes, witness lists) wrap at a smaller size, never split a label.
        size = 9 if len(value) <= 64 else 7
        pdf.set_font(FAMILY, size=size)
        pdf.multi_cell(0, 5.5, f"{label}{COLON}{value}", new_x="LMARGIN", new_y="NEXT")


def _qr(pdf: FPDF, url: str, *, x: float, y: float, size: float) -> None:
    """The QR code as filled squares (vector: sharp at any print size), with its quiet zone."""
    code = segno.make_qr(url, error="m")
    matrix = [list(row) for row in code.matrix_iter(scale=1, border=4)]
    cell = size / len(matrix)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):  # one rectangle per run of dark modules
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x + start * cell, y + r * cell, (c - start) * cell, cell, style="F")
            else:
                c += 1
